// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

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
        let configuration = self.configuration
        let v4 = try query(name, type: .a)
        let v6 = configuration.noAAAA ? nil : try query(name, type: .aaaa)
        var results: [Bool: Result<[IPAddress], any Error>] = [:]
        if configuration.singleRequest {
            results[false] = await Self.addresses(of: v4)
            if let v6 { results[true] = await Self.addresses(of: v6) }
        } else {
            results = await Self.race(v4, v6)
        }
        try Task.checkCancellation()
        return try Self.chosen(name, results)
    }

    /// An address literal is its own answer.
    private static func literal(_ name: String) -> IPAddress? {
        if let v4 = DNRNames.dottedQuad(name) { return .v4(v4) }
        if name.contains(":"), let literal = IPAddress(name) { return literal }
        return nil
    }

    /// The addresses of both answers in the order to try them, or the more telling failure.
    private static func chosen(_ name: String, _ results: [Bool: Result<[IPAddress], any Error>]) throws -> [IPAddress] {
        let found = (try? results[true]?.get() ?? []) ?? []
        let all = ((try? results[false]?.get()) ?? []) + found
        if !all.isEmpty { return AddressSelection.ordered(all) }
        let failures = [results[false], results[true]].compactMap { result -> (any Error)? in
            guard case .failure(let error)? = result else { return nil }
            return error
        }
        if let telling = failures.first(where: { !(($0 as? MacTCPError) == .authNameErr) }) { throw telling }
        throw failures.first ?? MacTCPError.authNameErr.with(operation: "addresses", detail: "\(name): no A or AAAA record")
    }

    /// ``addresses(for:)`` within `deadline`, for an active open by name (the resolution
    /// counts against the open's timeout); `openFailed` with `ETIMEDOUT` when it passes.
    func addresses(for name: String, deadline: Deadline) async throws -> [IPAddress] {
        guard let left = deadline.remaining else { return try await addresses(for: name) }
        return try await withThrowingTaskGroup(of: [IPAddress]?.self) { group in
            group.addTask { try await self.addresses(for: name) }
            group.addTask {
                try await Task.sleep(for: left)
                return nil
            }
            defer { group.cancelAll() }
            guard let found = try await group.next(), let found else { throw Self.resolutionTimedOut(name) }
            return found
        }
    }

    /// The blocking ``addresses(for:)``, within `deadline`: the same queries, the same
    /// resolution delay, waited for on the calling thread.
    func addresses(for name: String, deadline: Deadline) throws -> [IPAddress] {
        if let literal = Self.literal(name) { return [literal] }
        let configuration = self.configuration
        let v4 = try query(name, type: .a)
        let v6 = configuration.noAAAA ? nil : try query(name, type: .aaaa)
        let settled = Lock(0)
        for query in [v4, v6].compactMap({ $0 }) {
            query.onDone { _ in
                settled.withLock { count in
                    count += 1
                    settled.broadcastWhileLocked()
                }
            }
        }
        let expected = v6 == nil ? 1 : 2
        var delayEnd: Deadline?
        var results: [Bool: Result<[IPAddress], any Error>] = [:]
        while true {
            let count = settled.withLock { $0 }
            results = [:]
            if v4.isDone { results[false] = Self.addresses(of: v4) }
            if let v6, v6.isDone { results[true] = Self.addresses(of: v6) }
            if count >= expected { break }
            if delayEnd == nil, results.values.contains(where: { (try? $0.get())?.isEmpty == false }) {
                delayEnd = Deadline(milliseconds: UInt64(Self.resolutionDelay.components.attoseconds / 1_000_000_000_000_000))
            }
            if let delayEnd, delayEnd.hasPassed { break }
            if deadline.hasPassed { throw Self.resolutionTimedOut(name) }
            _ = settled.wait(until: Deadline.earlier(deadline, delayEnd ?? deadline)) { $0 > count ? () : nil }
        }
        return try Self.chosen(name, results)
    }

    private static func resolutionTimedOut(_ name: String) -> MacTCPError {
        MacTCPError.openFailed.with(
            operation: "activeOpen", errno: ETIMEDOUT, detail: "resolving \(name) took longer than the open's timeout")
    }

    /// Both queries awaited at once, keyed by "is IPv6"; the lagging one given up 50 ms
    /// after the other answered with addresses.
    private static func race(_ v4: DNRQuery, _ v6: DNRQuery?) async -> [Bool: Result<[IPAddress], any Error>] {
        await withTaskGroup(of: (Bool, Result<[IPAddress], any Error>)?.self) { group in
            group.addTask { (false, await addresses(of: v4)) }
            if let v6 { group.addTask { (true, await addresses(of: v6)) } }
            let expected = v6 == nil ? 1 : 2
            var results: [Bool: Result<[IPAddress], any Error>] = [:]
            var delayed = false
            while let next = await group.next() {
                guard let (isIPv6, result) = next else { break }  // the resolution delay is over
                results[isIPv6] = result
                if results.count == expected { break }
                if !delayed, case .success(let found) = result, !found.isEmpty {
                    delayed = true
                    group.addTask {
                        try? await Task.sleep(for: resolutionDelay)
                        return nil
                    }
                }
            }
            group.cancelAll()
            return results
        }
    }

    /// RFC 8305 §3's resolution delay.
    static let resolutionDelay = Duration.milliseconds(50)

    private static func addresses(of query: DNRQuery) async -> Result<[IPAddress], any Error> {
        do {
            return .success(addresses(in: try await query.wait()))
        } catch {
            return .failure(error)
        }
    }

    /// The answer of a query that is done (the blocking wait returns at once).
    private static func addresses(of query: DNRQuery) -> Result<[IPAddress], any Error> {
        Result { addresses(in: try query.wait()) }
    }

    private static func addresses(in records: [DNRRecord]) -> [IPAddress] {
        records.compactMap { record in
            switch record.value {
            case .a(let v4): return .v4(v4)
            case .aaaa(let bytes): return IPv6Address(bytes: bytes).map(IPAddress.v6)
            default: return nil
            }
        }
    }
}
