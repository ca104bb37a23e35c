// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// One question to the resolver, settled or in flight, shared by every result that asked it
/// while it was in flight (identical queries share one packet). It completes once: with the
/// resolver's outcome, or with `notOpenErr` when the resolver is closed first. Blocked
/// threads, suspended tasks and completion handlers all wait on it; a cancelled task leaves
/// only itself.
final class DNRFlight: Sendable {
    typealias Outcome = Result<Resolver.Outcome, MacTCPError>

    private struct State {
        var outcome: Outcome?
        var handlers: [@Sendable () -> Void] = []
        var tasks: [UInt64: CheckedContinuation<Outcome?, Never>] = [:]
        var nextTask: UInt64 = 0
    }

    /// The outcome of a flight settled when it was made (a cache hit: no lock to take).
    private let settled: Outcome?
    /// The state of a flight still to be answered (nil when settled at once).
    private let state: Lock<State>?

    /// A flight settled at once (`outcome`), or one still to be answered (nil).
    init(_ outcome: Outcome? = nil) {
        settled = outcome
        state = outcome == nil ? Lock(State()) : nil
    }

    /// Whether the flight was settled when it was made (no server was asked for it).
    var settledAtOnce: Bool { state == nil }

    /// The outcome, if settled.
    var outcome: Outcome? {
        guard let state else { return settled }
        return state.withLock { $0.outcome }
    }

    /// Settles the flight, if nothing settled it before: wakes every waiter and runs the
    /// completion handlers through `deliver` (on the calling thread without it). Returns
    /// whether this call settled it.
    @discardableResult
    func complete(_ outcome: Outcome, deliver: ((@escaping @Sendable () -> Void) -> Void)? = nil) -> Bool {
        guard let state else { return false }
        let waiting = state.withLock { state -> (handlers: [@Sendable () -> Void], tasks: [CheckedContinuation<Outcome?, Never>])? in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            let waiting = (state.handlers, Array(state.tasks.values))
            state.handlers = []
            state.tasks = [:]
            self.state?.broadcastWhileLocked()
            return waiting
        }
        guard let waiting else { return false }
        for task in waiting.tasks { task.resume(returning: outcome) }
        guard !waiting.handlers.isEmpty else { return true }
        let handlers = waiting.handlers
        let run: @Sendable () -> Void = { for handler in handlers { handler() } }
        if let deliver { deliver(run) } else { run() }
        return true
    }

    /// Blocks the calling thread until the flight is settled.
    func wait() -> Outcome {
        guard let state else { return settled ?? .failure(.dnrErr) }
        // Never nil: the deadline never passes.
        return state.wait(until: .never) { $0.outcome } ?? .failure(.dnrErr)
    }

    /// Suspends until the flight is settled; throws `CancellationError` when the task is
    /// cancelled (the flight and its other waiters go on).
    func wait() async throws -> Outcome {
        guard let state else { return settled ?? .failure(.dnrErr) }
        let token = state.withLock { state -> UInt64 in
            state.nextTask &+= 1
            return state.nextTask
        }
        let outcome = await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Outcome?, Never>) in
                let now = state.withLock { state -> Outcome?? in
                    if let outcome = state.outcome { return .some(outcome) }
                    if Task.isCancelled { return .some(nil) }
                    state.tasks[token] = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            let continuation = state.withLock { $0.tasks.removeValue(forKey: token) }
            continuation?.resume(returning: nil)
        }
        guard let outcome else { throw CancellationError() }
        return outcome
    }

    /// Runs `handler` once the flight is settled: before returning, on the calling thread,
    /// when it is settled already; otherwise on the thread that settles it.
    func whenSettled(_ handler: @escaping @Sendable () -> Void) {
        let isSettled =
            state?.withLock { state -> Bool in
                if state.outcome != nil { return true }
                state.handlers.append(handler)
                return false
            } ?? true
        if isSettled { handler() }
    }
}
