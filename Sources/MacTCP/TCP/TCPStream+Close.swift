// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

extension TCPStream {
    /// Half-closes the connection: "no more data from this side". Returns when every byte
    /// sent and this side's FIN have been acknowledged. Receiving keeps working.
    ///
    /// The wait is bounded by the ULP timeout: with the abort action the connection is then
    /// broken and this throws ``MacTCPError/connectionTerminated``; with the report action
    /// it keeps waiting and the ASR gets ``TCPEvent/ulpTimeout`` each period.
    ///
    /// - Throws: ``MacTCPError/connectionClosing`` on a second close or after a graceful end;
    ///   ``MacTCPError/connectionDoesntExist`` without a connection;
    ///   ``MacTCPError/connectionTerminated`` when the connection is or gets broken;
    ///   ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding MacTCP call is `TCPClose`.
    public func close() throws {
        let connection = try beginClose()
        if try closeCompleted(connection) == true || sleepUntilClosed(connection) { return }
        watchUntilClosed(connection)
        while true {
            let done = try core.wait(until: Deadline(milliseconds: 200)) { state throws(MacTCPError) -> Bool? in
                try closeCompleted(connection, state)
            }
            if done == true { return }
            // Safety net for a missed wakeup: look at the kernel state ourselves.
            observe(connection, reported: EpollEvents.output, forceAll: true)
        }
    }

    /// Half-closes the connection, suspending (never blocking a thread) until this side's
    /// FIN is acknowledged; the async form of ``close()-()``, with the same results and errors.
    ///
    /// Cancelling the task makes the call throw `CancellationError` at once. The FIN has
    /// been sent by then: the connection stays half-closed exactly as after a completed
    /// `close()` (its acknowledgement simply is not awaited), receiving goes on, and a second
    /// `close()` throws ``MacTCPError/connectionClosing``.
    ///
    /// - Throws: As the blocking form, and `CancellationError` when the task is cancelled.
    ///
    /// The corresponding MacTCP call is `TCPClose`.
    public func close() async throws {
        let connection = try beginClose()
        watchUntilClosed(connection)
        while true {
            let seen = changeCount
            if try closeCompleted(connection) != nil { return }
            switch await change(since: seen, deadline: Deadline(milliseconds: 200)) {
            case .changed: break
            case .timedOut: observe(connection, reported: EpollEvents.output, forceAll: true)
            case .cancelled: throw CancellationError()
            }
        }
    }

    /// Checks the state, marks the connection closed by us and sends the FIN.
    private func beginClose() throws(MacTCPError) -> Connection {
        let connection = try withUsableConnection("close", closedOK: false) { connection, _ throws(MacTCPError) -> Connection in
            connection.weClosed = true
            return connection
        }
        let result = connection.descriptor.withDescriptor { Sys.shutdownWrite($0) } ?? -1
        if result < 0 {
            // Only a connection that died under us refuses shutdown: find out how.
            observe(connection, reported: EpollEvents.error | EpollEvents.hangUp, forceAll: true)
        } else {
            // On loopback the FIN is often acknowledged within the shutdown call itself.
            observe(connection, reported: 0)
        }
        return connection
    }

    /// Has the reactor wake the stream's waiting calls when the acknowledgement comes.
    private func watchUntilClosed(_ connection: Connection) {
        core.withLock { state in
            if isCurrent(connection, state) && !connection.finAcknowledged && connection.end == nil {
                watch(connection, EpollEvents.stateChanges)
            }
        }
    }

    /// The blocking close's wait, without the reactor: the thread sleeps in an epoll
    /// instance of its own on the socket's state changes, and looks at the kernel's state
    /// after each wake-up, as the reactor would. Every change that ends the wait happens on
    /// the socket (the acknowledgement, the peer's FIN, a reset, an abort or release, which
    /// disconnect it); the descriptor stays open meanwhile. Returns true when the close
    /// completed; false when no epoll instance can be made (then the reactor watches); throws
    /// when the connection broke.
    private func sleepUntilClosed(_ connection: Connection) throws(MacTCPError) -> Bool {
        let completed = try connection.descriptor.withDescriptor { fd throws(MacTCPError) -> Bool in
            guard let watch = StateWatch(fd, events: EpollEvents.output | EpollEvents.readHangUp) else { return false }
            defer { watch.close() }
            while true {
                // The period is the same safety net as the reactor's wait has.
                let reported = watch.sleep(milliseconds: 200)
                observe(connection, reported: reported, forceAll: reported == 0)
                if try closeCompleted(connection) == true { return true }
            }
        }
        guard let completed else { throw terminated("close") }
        return completed
    }

    /// true when our FIN has been acknowledged, nil while it has not; throws when the
    /// connection broke.
    private func closeCompleted(_ connection: Connection) throws(MacTCPError) -> Bool? {
        try core.withLock { state throws(MacTCPError) in try closeCompleted(connection, state) }
    }

    /// true when our FIN has been acknowledged, nil while it has not; throws when the
    /// connection broke. Called with the state lock held.
    private func closeCompleted(_ connection: Connection, _ state: State) throws(MacTCPError) -> Bool? {
        guard isCurrent(connection, state), !connection.isAbnormallyEnded else { throw terminated("close") }
        return connection.finAcknowledged || connection.end == .graceful ? true : nil
    }

    /// Aborts the connection at once: the peer gets a reset, data is discarded both ways,
    /// the ASR gets ``TCPEvent/terminate`` with ``TCPTerminationReason/ulpAbort``, and the
    /// stream is back in its initial state, ready to open again. Calls blocked on the stream
    /// return with ``MacTCPError/connectionTerminated``. A pending passive open is cancelled
    /// (``wait()-6ptai`` throws ``MacTCPError/connectionTerminated``); an active open in progress is
    /// interrupted.
    ///
    /// - Throws: ``MacTCPError/connectionDoesntExist`` when there is no connection (never
    ///   opened, already aborted, or the connection has already ended);
    ///   ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding MacTCP call is `TCPAbort`.
    public func abort() throws {
        let operation = "abort"
        let interrupted = try core.withLock { state throws(MacTCPError) -> ConnectAttempts? in
            try checkNotReleased(state, operation)
            switch state.phase {
            case .idle:
                throw MacTCPError.connectionDoesntExist.with(operation: operation, detail: "the stream has no connection")
            case .listening(let pending):
                state.phase = .idle
                cancelPassiveOpen(pending, in: &state, failure: .connectionTerminated)
                return nil
            case .connecting(let attempts):
                state.phase = .idle
                signalChange(&state)
                return attempts
            case .connected(let connection):
                guard connection.end == nil else {
                    throw MacTCPError.connectionDoesntExist.with(operation: operation, detail: "the connection has already ended")
                }
                endConnectionByUser(connection)
                state.phase = .idle
                signalChange(&state)
                return nil
            }
        }
        interrupted?.interrupt()
    }
}
