#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

extension TCPStream {
    /// Sends data on the connection; returns when the kernel has taken every byte (or, with
    /// `waitForAck`, when the peer has acknowledged every byte).
    ///
    /// - Parameters:
    ///   - data: The bytes to send, at least one.
    ///   - push: `true` sends promptly; `false` lets TCP hold the bytes to coalesce them with
    ///     the next send (they leave within about 200 ms even if nothing follows).
    ///   - urgent: Sends the whole buffer as urgent data: the urgent pointer ends after its
    ///     last byte, so the peer's mark falls on that byte.
    ///   - waitForAck: Returns only when the peer has acknowledged every byte of this send,
    ///     MacTCP's own completion rule for TCPSend.
    /// - Throws: ``MacTCPError/invalidLength`` for empty data;
    ///   ``MacTCPError/connectionClosing`` after `close()` or a graceful end;
    ///   ``MacTCPError/connectionDoesntExist`` without a connection;
    ///   ``MacTCPError/connectionTerminated`` when the connection is broken (before or during
    ///   the send); ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding MacTCP call is `TCPSend`.
    public func send(_ data: [UInt8], push: Bool = true, urgent: Bool = false, waitForAck: Bool = false) throws {
        try data.withUnsafeBytes { bytes in
            try send(bytes, push: push, urgent: urgent, waitForAck: waitForAck)
        }
    }

    /// Sends a string as UTF-8; see ``send(_:push:urgent:waitForAck:)-([UInt8],_,_,_)``.
    ///
    /// - Parameters:
    ///   - string: The text to send, not empty.
    ///   - push: `true` sends promptly; `false` lets TCP coalesce it with the next send.
    ///   - urgent: Sends the whole text as urgent data.
    ///   - waitForAck: Returns only when the peer has acknowledged every byte.
    /// - Throws: As ``send(_:push:urgent:waitForAck:)-([UInt8],_,_,_)``.
    ///
    /// The corresponding MacTCP call is `TCPSend`.
    public func send(_ string: String, push: Bool = true, urgent: Bool = false, waitForAck: Bool = false) throws {
        try send(Array(string.utf8), push: push, urgent: urgent, waitForAck: waitForAck)
    }

    /// Sends the bytes of a raw buffer; see ``send(_:push:urgent:waitForAck:)-([UInt8],_,_,_)``.
    ///
    /// - Parameters:
    ///   - bytes: The bytes to send, at least one; only read during the call.
    ///   - push: `true` sends promptly; `false` lets TCP coalesce them with the next send.
    ///   - urgent: Sends the whole buffer as urgent data.
    ///   - waitForAck: Returns only when the peer has acknowledged every byte.
    /// - Throws: As ``send(_:push:urgent:waitForAck:)-([UInt8],_,_,_)``.
    ///
    /// The corresponding MacTCP call is `TCPSend`.
    public func send(_ bytes: UnsafeRawBufferPointer, push: Bool = true, urgent: Bool = false, waitForAck: Bool = false) throws {
        let operation = "send"
        let connection = try core.withLock { state throws(MacTCPError) -> Connection in
            let connection = try usableConnection(state, operation, closedOK: false)
            if bytes.isEmpty {
                throw MacTCPError.invalidLength.with(operation: operation, detail: "there is nothing to send: data is empty")
            }
            return connection
        }
        let target = try connection.sendLock.withLock { counters throws(MacTCPError) -> UInt64 in
            if waitForAck && !counters.ackReportsEnabled {
                let base = counters.written
                let enabled = connection.descriptor.withDescriptor { Sys.enableAckReports($0) } ?? -EBADF
                if enabled >= 0 {
                    counters.ackReportsEnabled = true
                    core.withLock { _ in
                        connection.ackBase = base
                        connection.ackedThrough = max(connection.ackedThrough, base)
                    }
                }
            }
            var flags = Sys.msgNoSignal
            if !push { flags |= Sys.msgMore }
            if urgent {
                // Only the last byte carries MSG_OOB, so that the urgent pointer moves once, to
                // the end of this buffer, even when the kernel takes the data in pieces.
                if bytes.count > 1 {
                    try write(UnsafeRawBufferPointer(rebasing: bytes.dropLast()), flags: flags | Sys.msgMore,
                              reportAck: false, connection, &counters, operation)
                }
                try write(UnsafeRawBufferPointer(rebasing: bytes.suffix(1)), flags: flags | Sys.msgOOB,
                          reportAck: waitForAck, connection, &counters, operation)
            } else {
                try write(bytes, flags: flags, reportAck: waitForAck, connection, &counters, operation)
            }
            return counters.written
        }
        if waitForAck {
            try waitForAcknowledgement(of: target, on: connection, operation)
        }
    }

    /// Hands every byte to the kernel, waiting for send-buffer space on the caller's thread.
    private func write(
        _ bytes: UnsafeRawBufferPointer,
        flags: Int32,
        reportAck: Bool,
        _ connection: Connection,
        _ counters: inout Connection.SendCounters,
        _ operation: String
    ) throws(MacTCPError) {
        var offset = 0
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            let result = connection.descriptor.withDescriptor { fd -> Int in
                let sent = reportAck ? Sys.sendReportingAck(fd, rest, flags: flags) : Sys.send(fd, rest, flags: flags)
                if sent == Errno.again {
                    let ready = Sys.poll(fd, events: Sys.pollOut, timeoutMilliseconds: -1)
                    return ready < 0 ? ready : Errno.again
                }
                return sent
            } ?? -Int(EPIPE)
            if result > 0 {
                offset += result
                counters.written += UInt64(result)
                continue
            }
            if result == Errno.again { 
                try checkStillConnected(connection, operation)
                continue
            }
            if let error = failure(result, on: connection, operation: operation) { throw error }
        }
    }

    /// Throws `connectionTerminated` if the connection ended or was replaced while a call
    /// was blocked on it.
    func checkStillConnected(_ connection: Connection, _ operation: String) throws(MacTCPError) {
        let alive = core.withLock { state in isCurrent(connection, state) && !connection.isAbnormallyEnded }
        if !alive { throw terminated(operation) }
    }

    /// Blocks until every byte below `target` has been acknowledged: woken by the kernel's
    /// acknowledgement report for the last byte (SOF_TIMESTAMPING_TX_ACK), with a periodic
    /// look at the socket as a safety net.
    private func waitForAcknowledgement(of target: UInt64, on connection: Connection, _ operation: String) throws(MacTCPError) {
        while true {
            let done = try core.wait(until: Deadline(timeout: .milliseconds(200))) { state throws(MacTCPError) -> Bool? in
                guard isCurrent(connection, state), !connection.isAbnormallyEnded else { throw terminated(operation) }
                return connection.ackedThrough >= target ? true : nil
            }
            if done == true { return }
            // Safety net: drain reports the reactor may not have seen, and count an empty
            // send queue as everything acknowledged.
            observe(connection, reported: EpollEvents.error)
            let outstanding = connection.descriptor.withDescriptor { Sys.outputQueue($0) } ?? -1
            if outstanding == 0 {
                core.withLock { _ in connection.ackedThrough = max(connection.ackedThrough, target) }
            }
        }
    }
}
