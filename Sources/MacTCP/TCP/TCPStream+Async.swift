// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The async forms of the calls that wait: passive open completion and active open.
/// (Receive, send and close have theirs beside their blocking forms.)
///
/// They never block a thread of Swift's cooperative pool: a call that cannot finish at once
/// suspends, and the reactor resumes it when the stream changes (see
/// `TCPStream+Changes.swift`). The results and errors are those of the blocking forms;
/// cancelling the task makes a call throw `CancellationError` at once.
extension TCPStream {
    /// Suspends until the pending passive open completes, and throws its failure once; the
    /// async form of ``wait()-()``.
    ///
    /// Cancelling the task cancels the passive open itself: it stops waiting, the ASR gets
    /// ``TCPEvent/passiveOpenDone`` with ``MacTCPError/connectionTerminated``'s code, and the
    /// stream is back in its initial state, ready to open again.
    ///
    /// - Throws: As the blocking form, and `CancellationError` when the task is cancelled.
    ///
    /// The corresponding Python `mactcp` call is `wait()`.
    public func wait() async throws {
        var entering = true
        // A client already queued is taken here; once suspended, the stream counts as watched
        // and the reactor accepts.
        settlePassiveOpen()
        while true {
            let seen = changeCount
            let outcome = try core.withLock { state throws(MacTCPError) -> MacTCPError?? in
                // A wait that begins after release() is a later call; one that was waiting
                // when release() cancelled the passive open gets that failure.
                defer { entering = false }
                if state.released && (entering || state.passiveFailure == nil) {
                    throw MacTCPError.invalidStreamPtr.with(operation: "wait", detail: "the stream has been released")
                }
                if case .listening = state.phase { return nil }
                defer { state.passiveFailure = nil }
                return .some(state.passiveFailure)
            }
            if let outcome {
                if let failure = outcome { throw failure }
                return
            }
            if await change(since: seen, deadline: .never) == .cancelled {
                core.withLock { state in
                    guard case .listening(let pending) = state.phase else { return }
                    state.phase = .idle
                    cancelPassiveOpen(pending, in: &state, failure: .connectionTerminated)
                    state.passiveFailure = nil
                }
                throw CancellationError()
            }
        }
    }

    /// Opens a connection, suspending (never blocking a thread) until it is established; the
    /// async form of ``activeOpen(localPort:host:remotePort:timeout:options:)``.
    ///
    /// Cancelling the task abandons the attempt: the socket is closed and the stream is back
    /// in its initial state, ready to open again.
    ///
    /// - Parameters:
    ///   - localPort: The local port; 0 lets the system choose.
    ///   - host: The remote IPv4 address (host byte order), not 0.
    ///   - remotePort: The remote port, not 0.
    ///   - timeout: How long to try (`.zero`: up to the ULP timeout).
    ///   - options: ULP timeout and action, and IP header settings for the connection.
    /// - Throws: As the blocking form, and `CancellationError` when the task is cancelled.
    ///
    /// The corresponding MacTCP call is `TCPActiveOpen`.
    public func activeOpen(
        localPort: UInt16 = 0,
        host: UInt32,
        remotePort: UInt16,
        timeout: Duration = .zero,
        options: TCPOpenOptions = .init()
    ) async throws {
        let opening = try beginActiveOpen(
            localPort: localPort,
            host: host,
            remotePort: remotePort,
            timeout: timeout,
            options: options,
            watched: true
        )
        do {
            var result = opening.started
            while result == Errno.inProgress {
                let seen = changeCount
                result = connectOutcome(opening)
                guard result == Errno.inProgress else { break }
                switch await change(since: seen, deadline: opening.deadline) {
                case .changed: break
                case .timedOut: result = -Int(ETIMEDOUT)
                case .cancelled: throw CancellationError()
                }
            }
            try finishActiveOpen(opening, result: result)
        } catch {
            abandon(opening)
            throw error
        }
    }

    /// The events of this stream as an asynchronous sequence: the same events as the ASR, in
    /// the same order, with the same exactly-once rules, each with its detail.
    ///
    /// Meant for one consumer; the sequence delivers the events that happen from its first
    /// use on, and ends when the stream is released. The ASR keeps working alongside it.
    ///
    /// ```swift
    /// for await (event, detail) in stream.events {
    ///     print(event, detail)
    ///     if event == .terminate { break }
    /// }
    /// ```
    public var events: AsyncStream<(event: TCPEvent, detail: Int)> {
        let sequence = delivery.sequence(finished: core.withLock { $0.released })
        listenersChanged()
        return sequence
    }
}

#if canImport(Glibc)
import Glibc
#endif
