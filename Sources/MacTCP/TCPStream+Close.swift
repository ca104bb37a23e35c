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
        let operation = "close"
        let connection = try core.withLock { state throws(MacTCPError) -> Connection in
            let connection = try usableConnection(state, operation, closedOK: false)
            connection.weClosed = true
            return connection
        }
        let result = connection.descriptor.withDescriptor { Sys.shutdownWrite($0) } ?? -1
        if result < 0 {
            // Only a connection that died under us refuses shutdown: find out how.
            observe(connection, reported: EpollEvents.error | EpollEvents.hangUp, forceAll: true)
        }
        while true {
            let done = try core.wait(until: Deadline(timeout: .milliseconds(200))) { state throws(MacTCPError) -> Bool? in
                guard isCurrent(connection, state), !connection.isAbnormallyEnded else { throw terminated(operation) }
                return connection.finAcknowledged || connection.end == .graceful ? true : nil
            }
            if done == true { return }
            // Safety net for a missed wakeup: look at the kernel state ourselves.
            observe(connection, reported: EpollEvents.output, forceAll: true)
        }
    }

    /// Aborts the connection at once: the peer gets a reset, data is discarded both ways,
    /// the ASR gets ``TCPEvent/terminate`` with ``TCPTerminationReason/ulpAbort``, and the
    /// stream is back in its initial state, ready to open again. Calls blocked on the stream
    /// return with ``MacTCPError/connectionTerminated``. A pending passive open is cancelled
    /// (``wait()`` throws ``MacTCPError/connectionTerminated``); an active open in progress is
    /// interrupted.
    ///
    /// - Throws: ``MacTCPError/connectionDoesntExist`` when there is no connection (never
    ///   opened, already aborted, or the connection has already ended);
    ///   ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding MacTCP call is `TCPAbort`.
    public func abort() throws {
        let operation = "abort"
        let interrupted = try core.withLock { state throws(MacTCPError) -> Descriptor? in
            try checkNotReleased(state, operation)
            switch state.phase {
            case .idle:
                throw MacTCPError.connectionDoesntExist.with(operation: operation, detail: "the stream has no connection")
            case .listening(let pending):
                state.phase = .idle
                cancelPassiveOpen(pending, in: &state, failure: .connectionTerminated)
                return nil
            case .connecting(let descriptor):
                state.phase = .idle
                signalChange(&state)
                return descriptor
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
        if let interrupted {
            _ = interrupted.withDescriptor { Sys.disconnect($0) }
        }
    }
}
