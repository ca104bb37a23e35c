// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Dispatch

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

extension DNR {
    /// A name's addresses of both families, in the order to try them: for connecting by name.
    ///
    /// A and AAAA are asked at once (one after the other with `options single-request`; AAAA
    /// not at all with `no-aaaa`). It returns when both are answered, or 50 ms after the first
    /// family has answered with addresses if the other lags (RFC 8305's resolution delay; the
    /// late answer still reaches the cache). The addresses are sorted by RFC 6724's rules and
    /// the families interleaved, the first family first (see the resolver article).
    ///
    /// - Parameter name: A host name, or an address literal (IPv4 dotted quad, IPv6 with an
    ///   optional `%scope`), which is returned as it is.
    /// - Returns: At least one address.
    /// - Throws: `MacTCPError.nameSyntaxErr` for a malformed name; `notOpenErr` after
    ///   ``close()``; when both families fail, the more telling failure (a server's over "no
    ///   such record": `noAnsErr` or `dnrErr` before `authNameErr`); `CancellationError`.
    ///
    /// There is no corresponding MacTCP call; MacTCP knew IPv4 only (``strToAddr(_:)``).
    public func addresses(for name: String) async throws -> [IPAddress] {
        if let literal = Self.literal(name) { return [literal] }
        let results = try await gathering(name).wait()
        try Task.checkCancellation()
        return try Self.chosen(name, results)
    }

    /// ``addresses(for:)`` within `deadline`, for an active open by name (the resolution
    /// counts against the open's timeout); `openFailed` with `ETIMEDOUT` when it passes.
    func addresses(for name: String, deadline: Deadline) async throws -> [IPAddress] {
        if let literal = Self.literal(name) { return [literal] }
        let gathering = try gathering(name)
        let results = await gathering.wait(until: deadline)
        try Task.checkCancellation()
        guard let results else { throw Self.resolutionTimedOut(name) }
        return try Self.chosen(name, results)
    }

    /// The blocking ``addresses(for:)``, within `deadline`: the same queries and the same
    /// resolution delay, waited for on the calling thread.
    func addresses(for name: String, deadline: Deadline) throws -> [IPAddress] {
        if let literal = Self.literal(name) { return [literal] }
        guard let results = try gathering(name).wait(until: deadline) else { throw Self.resolutionTimedOut(name) }
        return try Self.chosen(name, results)
    }

    /// Starts the A and AAAA queries of `name` and gathers their answers.
    private func gathering(_ name: String) throws -> AddressGathering {
        let configuration = self.configuration
        let v4 = try query(name, type: .a)
        let v6 = configuration.noAAAA ? nil : try query(name, type: .aaaa)
        return AddressGathering(v4: v4, v6: v6, delayed: !configuration.singleRequest)
    }

    /// An address literal is its own answer.
    private static func literal(_ name: String) -> IPAddress? {
        if let v4 = DNRNames.dottedQuad(name) { return .v4(v4) }
        if name.contains(":"), let literal = IPAddress(name) { return literal }
        return nil
    }

    /// The addresses of both answers in the order to try them, or the more telling failure.
    private static func chosen(_ name: String, _ results: AddressGathering.Results) throws -> [IPAddress] {
        let found = (try? results[true]?.get() ?? []) ?? []
        let all = ((try? results[false]?.get()) ?? []) + found
        if !all.isEmpty { return AddressSelection.ordered(all) }
        let failures = [results[false], results[true]].compactMap { result -> MacTCPError? in
            guard case .failure(let error)? = result else { return nil }
            return error
        }
        if let telling = failures.first(where: { $0 != .authNameErr }) { throw telling }
        throw failures.first ?? MacTCPError.authNameErr.with(operation: "addresses", detail: "\(name): no A or AAAA record")
    }

    private static func resolutionTimedOut(_ name: String) -> MacTCPError {
        MacTCPError.openFailed.with(
            operation: "activeOpen", errno: ETIMEDOUT, detail: "resolving \(name) took longer than the open's timeout")
    }

    /// RFC 8305 §3's resolution delay.
    static let resolutionDelay = DispatchTimeInterval.milliseconds(50)
}

/// The answers to a name's A and AAAA queries as they come, and the moment they are enough:
/// both answered, or 50 ms after the first answer with addresses (RFC 8305's resolution
/// delay; without `delayed`, both are waited for).
///
/// Everything is decided on the threads that settle the queries and on a timer of its own
/// (a serial Dispatch queue: an overcommitting thread, never Swift's cooperative pool), so
/// that a busy pool delays only the caller's wake-up, never what the answer holds. Blocked
/// threads and suspended tasks wait on it alike.
final class AddressGathering: Sendable {
    /// Each family's answer, keyed by "is IPv6".
    typealias Results = [Bool: Result<[IPAddress], MacTCPError>]

    private struct State {
        var results: Results = [:]
        /// What the answer is, once enough has come.
        var final: Results?
        var delayStarted = false
        var tasks: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextTask: UInt64 = 0
        /// Waiters whose deadline's timer fired before they suspended.
        var expired: Set<UInt64> = []
    }

    private let state = Lock(State())
    private let expected: Int
    private let delayed: Bool
    private static let timer = DispatchQueue(label: "mactcp.dnr.resolution-delay")

    init(v4: DNRQuery, v6: DNRQuery?, delayed: Bool) {
        expected = v6 == nil ? 1 : 2
        self.delayed = delayed
        v4.onDone { [self] query in settle(isIPv6: false, Self.addresses(of: query)) }
        v6?.onDone { [self] query in settle(isIPv6: true, Self.addresses(of: query)) }
    }

    private func settle(isIPv6: Bool, _ result: Result<[IPAddress], MacTCPError>) {
        let startDelay = state.withLock { state -> Bool in
            guard state.final == nil else { return false }
            state.results[isIPv6] = result
            if state.results.count == expected { return false }
            guard delayed, !state.delayStarted, case .success(let found) = result, !found.isEmpty else { return false }
            state.delayStarted = true
            return true
        }
        if startDelay {
            Self.timer.asyncAfter(deadline: .now() + DNR.resolutionDelay) { [self] in finish() }
        } else if state.withLock({ $0.results.count == expected }) {
            finish()
        }
    }

    /// Fixes the answer as it stands and wakes every waiter.
    private func finish() {
        let waiting = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard state.final == nil else { return [] }
            state.final = state.results
            let waiting = Array(state.tasks.values)
            state.tasks = [:]
            self.state.broadcastWhileLocked()
            return waiting
        }
        for task in waiting { task.resume() }
    }

    /// Blocks until the answer is fixed, or nil when `deadline` passes first.
    func wait(until deadline: Deadline) -> Results? {
        state.wait(until: deadline) { $0.final }
    }

    /// Suspends until the answer is fixed (or the task is cancelled: then what has come).
    func wait() async -> Results {
        await suspend(until: .never)
        return state.withLock { $0.final ?? $0.results }
    }

    /// Suspends until the answer is fixed, or nil when `deadline` passes first.
    func wait(until deadline: Deadline) async -> Results? {
        await suspend(until: deadline)
        return state.withLock { $0.final }
    }

    /// Suspends until the answer is fixed, `deadline` passes (a timer of the same queue,
    /// which fixes nothing: it only wakes this waiter) or the task is cancelled.
    private func suspend(until deadline: Deadline) async {
        let token = state.withLock { state -> UInt64 in
            state.nextTask &+= 1
            return state.nextTask
        }
        if let left = deadline.remaining {
            Self.timer.asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: left.wholeNanoseconds))) { [self] in
                state.withLock { state -> CheckedContinuation<Void, Never>? in
                    guard let waiting = state.tasks.removeValue(forKey: token) else {
                        state.expired.insert(token)
                        return nil
                    }
                    return waiting
                }?.resume()
            }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.final != nil || Task.isCancelled || state.expired.contains(token) { return true }
                    state.tasks[token] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.tasks.removeValue(forKey: token) }?.resume()
        }
        state.withLock { _ = $0.expired.remove(token) }
    }

    private static func addresses(of query: DNRQuery) -> Result<[IPAddress], MacTCPError> {
        do {
            return .success(
                try query.wait().compactMap { record in
                    switch record.value {
                    case .a(let v4): return .v4(v4)
                    case .aaaa(let bytes): return IPv6Address(bytes: bytes).map(IPAddress.v6)
                    default: return nil
                    }
                })
        } catch let error as MacTCPError {
            return .failure(error)
        } catch {
            return .failure(MacTCPError.dnrErr.with(operation: "addresses", detail: "\(error)"))
        }
    }
}
