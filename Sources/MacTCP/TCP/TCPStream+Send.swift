// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

extension TCPStream {
    /// Sends data on the connection; returns when the kernel has taken every byte (or, with
    /// `waitForAck`, when the peer has acknowledged every byte).
    ///
    /// Sends are serialised: the bytes of one call are never interleaved with another's.
    ///
    /// - Parameters:
    ///   - data: The bytes to send, at least one.
    ///   - push: `true` sends promptly; `false` lets TCP hold the bytes to coalesce them with
    ///     the next send (they leave within about 200 ms even if nothing follows).
    ///   - urgent: Sends the whole buffer as urgent data: the urgent pointer ends after its
    ///     last byte, so the peer's mark falls on that byte.
    ///   - waitForAck: Returns only when the peer has acknowledged every byte of this send,
    ///     MacTCP's own completion rule for TCPSend. The wait is bounded by the connection's
    ///     ULP timeout (``TCPOpenOptions/ulpTimeout``): once the peer has acknowledged nothing
    ///     more for that long, the call throws ``MacTCPError/commandTimeout`` and the data
    ///     stays sent.
    /// - Throws: ``MacTCPError/invalidLength`` for empty data;
    ///   ``MacTCPError/commandTimeout`` when a `waitForAck` wait saw no acknowledgement for
    ///   the ULP timeout;
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

    /// Sends a string as UTF-8; see ``send(_:push:urgent:waitForAck:)``.
    ///
    /// - Parameters:
    ///   - string: The text to send, not empty.
    ///   - push: `true` sends promptly; `false` lets TCP coalesce it with the next send.
    ///   - urgent: Sends the whole text as urgent data.
    ///   - waitForAck: Returns only when the peer has acknowledged every byte.
    /// - Throws: As ``send(_:push:urgent:waitForAck:)``.
    ///
    /// The corresponding MacTCP call is `TCPSend`.
    public func send(_ string: String, push: Bool = true, urgent: Bool = false, waitForAck: Bool = false) throws {
        try send(Array(string.utf8), push: push, urgent: urgent, waitForAck: waitForAck)
    }

    /// Sends the bytes of a raw buffer; see ``send(_:push:urgent:waitForAck:)``.
    ///
    /// - Parameters:
    ///   - bytes: The bytes to send, at least one; only read during the call.
    ///   - push: `true` sends promptly; `false` lets TCP coalesce them with the next send.
    ///   - urgent: Sends the whole buffer as urgent data.
    ///   - waitForAck: Returns only when the peer has acknowledged every byte.
    /// - Throws: As ``send(_:push:urgent:waitForAck:)``.
    ///
    /// The corresponding MacTCP call is `TCPSend`.
    public func send(_ bytes: UnsafeRawBufferPointer, push: Bool = true, urgent: Bool = false, waitForAck: Bool = false) throws {
        let (connection, hasTurn) = try beginSend(count: bytes.count)
        var holdsTurn = hasTurn
        defer { endSend(connection, holdsTurn: holdsTurn) }
        if !hasTurn {
            holdsTurn = try waitForTurn(.send, on: connection, until: .never, "send")
        }
        var plan = SendPlan(bytes: bytes, push: push, urgent: urgent, waitForAck: waitForAck)
        if waitForAck { prepareAckReports(connection) }
        while let piece = plan.next {
            let result =
                connection.descriptor.withDescriptor { fd -> Int in
                    let sent = writeStep(fd, bytes, piece, connection)
                    if sent == SyscallErrors.again {
                        let ready = Sys.poll(fd, events: Sys.pollOut, timeoutMilliseconds: -1)
                        return ready < 0 ? ready : SyscallErrors.again
                    }
                    return sent
                } ?? -Int(EPIPE)
            try plan.advance(by: result, self, connection)
        }
        if waitForAck {
            try waitForAcknowledgement(of: plan.target(connection), on: connection)
        }
    }

    /// Sends data, suspending (never blocking a thread) while the send buffer is full; the
    /// async form of ``send(_:push:urgent:waitForAck:)``, with the same
    /// results and errors.
    ///
    /// Cancelling the task makes the call throw `CancellationError` at once. What the
    /// connection is left with then: if the kernel had not taken any byte yet, nothing was
    /// sent and the connection is unchanged; if it had taken part of the data, the connection
    /// is aborted (the peer gets a reset, the ASR `.terminate` with
    /// ``TCPTerminationReason/ulpAbort``), so that a truncated message can never pass for a
    /// whole one; if every byte had been taken and the call was waiting for the
    /// acknowledgement (`waitForAck`), the data stays sent and the connection unchanged.
    ///
    /// - Parameters:
    ///   - data: The bytes to send, at least one.
    ///   - push: `true` sends promptly; `false` lets TCP coalesce them with the next send.
    ///   - urgent: Sends the whole buffer as urgent data.
    ///   - waitForAck: Returns only when the peer has acknowledged every byte.
    /// - Throws: As the blocking form, and `CancellationError` when the task is cancelled.
    ///
    /// The corresponding MacTCP call is `TCPSend`.
    public func send(_ data: [UInt8], push: Bool = true, urgent: Bool = false, waitForAck: Bool = false) async throws {
        let (connection, hasTurn) = try beginSend(count: data.count)
        var holdsTurn = hasTurn
        defer { endSend(connection, holdsTurn: holdsTurn) }
        if !hasTurn {
            holdsTurn = try await awaitTurn(.send, on: connection, until: .never, "send")
        }
        var plan = data.withUnsafeBytes { SendPlan(bytes: $0, push: push, urgent: urgent, waitForAck: waitForAck) }
        if waitForAck { prepareAckReports(connection) }
        while let piece = plan.next {
            let seen = changeCount
            let result = data.withUnsafeBytes { bytes in
                connection.descriptor.withDescriptor { fd in writeStep(fd, bytes, piece, connection) } ?? -Int(EPIPE)
            }
            try plan.advance(by: result, self, connection)
            if result == SyscallErrors.again {
                if await change(since: seen, deadline: .never) == .cancelled {
                    if plan.sent > 0 {
                        core.withLock { state in
                            if isCurrent(connection, state) && connection.end == nil {
                                endConnectionByUser(connection)
                                state.phase = .idle
                                signalChange(&state)
                            }
                        }
                    }
                    throw CancellationError()
                }
            }
        }
        if waitForAck {
            let target = plan.target(connection)
            var wait = AckWait(limit: connection.options.ulpTimeout)
            while true {
                let seen = changeCount
                if try acknowledged(target, connection, &wait) { return }
                switch await change(since: seen, deadline: Deadline(milliseconds: 200)) {
                case .cancelled: throw CancellationError()
                case .timedOut: lookForAcknowledgements(target, connection)
                case .changed: break
                }
            }
        }
    }

    /// Sends a string as UTF-8; the async form of
    /// ``send(_:push:urgent:waitForAck:)-(String,_,_,_)``.
    ///
    /// - Parameters:
    ///   - string: The text to send, not empty.
    ///   - push: `true` sends promptly; `false` lets TCP coalesce it with the next send.
    ///   - urgent: Sends the whole text as urgent data.
    ///   - waitForAck: Returns only when the peer has acknowledged every byte.
    /// - Throws: As the async form for bytes.
    ///
    /// The corresponding MacTCP call is `TCPSend`.
    public func send(_ string: String, push: Bool = true, urgent: Bool = false, waitForAck: Bool = false) async throws {
        try await send(Array(string.utf8), push: push, urgent: urgent, waitForAck: waitForAck)
    }

    // MARK: - Shared steps

    /// The pieces one send is made of, and how far it has got.
    ///
    /// At most two pieces: the bytes before `split`, then (for urgent data of more than one
    /// byte) the last byte alone, the only one sent with `MSG_OOB`, so that the urgent pointer
    /// moves once, to the end of this buffer, even when the kernel takes the data in parts.
    /// Kept as offsets: a send allocates nothing for its plan.
    struct SendPlan {
        /// One system call's worth: a range of the caller's bytes and its flags.
        struct Piece {
            let range: Range<Int>
            let flags: Int32
            let reportAck: Bool
        }

        private let count: Int
        /// Where the last piece starts (`count` when there is one piece).
        private let split: Int
        private let flags: Int32
        private let lastFlags: Int32
        private let reportAck: Bool
        /// Bytes the kernel has taken.
        private(set) var sent = 0

        init(bytes: UnsafeRawBufferPointer, push: Bool, urgent: Bool, waitForAck: Bool) {
            var flags = Sys.msgNoSignal
            if !push { flags |= Sys.msgMore }
            count = bytes.count
            reportAck = waitForAck
            if urgent && count > 1 {
                split = count - 1
                self.flags = flags | Sys.msgMore
                lastFlags = flags | Sys.msgOOB
            } else {
                split = count
                self.flags = urgent ? flags | Sys.msgOOB : flags
                lastFlags = self.flags
            }
        }

        /// What is left of the current piece, or nil when everything was taken. Only the last
        /// piece asks for the acknowledgement report (of its last byte).
        var next: Piece? {
            if sent < split { return Piece(range: sent..<split, flags: flags, reportAck: reportAck && split == count) }
            if sent < count { return Piece(range: sent..<count, flags: lastFlags, reportAck: reportAck) }
            return nil
        }

        /// Accounts for one system call's result; throws when the connection broke.
        mutating func advance(by result: Int, _ stream: TCPStream, _ connection: Connection) throws(MacTCPError) {
            if result > 0 {
                sent += result
                connection.written += UInt64(result)
                return
            }
            if result == SyscallErrors.again {
                try stream.checkStillConnected(connection, "send")
                return
            }
            if let error = stream.failure(result, on: connection, operation: "send") { throw error }
        }

        /// The count of bytes written on the connection that the acknowledgement must reach.
        func target(_ connection: Connection) -> UInt64 {
            connection.written
        }
    }

    /// Checks the stream's state and the data before a send, counts the send, and takes the
    /// send turn if it is free (true) — the common case, so one lock does all.
    private func beginSend(count: Int) throws(MacTCPError) -> (Connection, Bool) {
        let operation = "send"
        return try withUsableConnection(operation, closedOK: false) { connection, _ throws(MacTCPError) -> (Connection, Bool) in
            if count == 0 {
                throw MacTCPError.invalidLength.with(operation: operation, detail: "there is nothing to send: data is empty")
            }
            return (connection, connection.enter(.send))
        }
    }

    /// Throws when the connection a call works on has ended or been replaced. Called with
    /// the state lock held.
    func checkAlive(_ connection: Connection, _ state: State, _ operation: String) throws(MacTCPError) {
        guard isCurrent(connection, state), !connection.isAbnormallyEnded else { throw terminated(operation) }
    }

    /// After any send: the turn goes to a waiting send, if any (a change wakes it; with nobody
    /// waiting, there is nobody to tell).
    private func endSend(_ connection: Connection, holdsTurn: Bool) {
        core.withLock { state in
            if connection.leave(.send, holdingTurn: holdsTurn) { signalChange(&state) }
        }
    }

    /// Turns on the kernel's acknowledgement reports the first time a send waits for them.
    private func prepareAckReports(_ connection: Connection) {
        let enable = connection.ackReportsEnabled ? nil : connection.written
        core.withLock { state in
            if isCurrent(connection, state) { watch(connection, EpollEvents.errors) }
        }
        guard let base = enable else { return }
        let enabled = connection.descriptor.withDescriptor { Sys.enableAckReports($0) } ?? -EBADF
        guard enabled >= 0 else { return }
        connection.ackReportsEnabled = true
        core.withLock { _ in
            connection.ackBase = base
            connection.ackedThrough = max(connection.ackedThrough, base)
        }
    }

    /// One non-blocking send system call for a piece.
    private func writeStep(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, _ piece: SendPlan.Piece, _ connection: Connection) -> Int {
        let slice = UnsafeRawBufferPointer(rebasing: bytes[piece.range])
        return piece.reportAck ? Sys.sendReportingAck(fd, slice, flags: piece.flags) : Sys.send(fd, slice, flags: piece.flags)
    }

    /// Throws `connectionTerminated` if the connection ended or was replaced while a call
    /// was blocked on it.
    func checkStillConnected(_ connection: Connection, _ operation: String) throws(MacTCPError) {
        let alive = core.withLock { state in isCurrent(connection, state) && !connection.isAbnormallyEnded }
        if !alive { throw terminated(operation) }
    }

    /// Whether every byte below `target` has been acknowledged; throws if the connection
    /// broke, or if no further byte was acknowledged for the ULP timeout (`wait`).
    private func acknowledged(_ target: UInt64, _ connection: Connection, _ wait: inout AckWait) throws(MacTCPError) -> Bool {
        try core.withLock { state throws(MacTCPError) -> Bool in
            try checkAlive(connection, state, "send")
            if connection.ackedThrough >= target { return true }
            try wait.check(connection.ackedThrough)
            return false
        }
    }

    /// Safety net for a missed report: drain the error queue, and count an empty send queue
    /// as everything acknowledged.
    private func lookForAcknowledgements(_ target: UInt64, _ connection: Connection) {
        observe(connection, reported: EpollEvents.error)
        let outstanding = connection.descriptor.withDescriptor { Sys.outputQueue($0) } ?? -1
        if outstanding == 0 {
            core.withLock { state in
                connection.ackedThrough = max(connection.ackedThrough, target)
                signalChange(&state)
            }
        }
    }

    /// Blocks until every byte below `target` has been acknowledged: woken by the kernel's
    /// acknowledgement report for the last byte (SOF_TIMESTAMPING_TX_ACK), with a periodic
    /// look at the socket as a safety net.
    private func waitForAcknowledgement(of target: UInt64, on connection: Connection) throws(MacTCPError) {
        var wait = AckWait(limit: connection.options.ulpTimeout)
        while true {
            let done = try core.wait(until: Deadline(milliseconds: 200)) { state throws(MacTCPError) -> Bool? in
                try checkAlive(connection, state, "send")
                return connection.ackedThrough >= target ? true : nil
            }
            if done == true { return }
            lookForAcknowledgements(target, connection)
            if try acknowledged(target, connection, &wait) { return }
        }
    }
}

/// The bound on a send's wait for its acknowledgement: the ULP timeout without progress.
///
/// The wait gives up with `commandTimeout` once no further byte has been acknowledged for the
/// connection's ULP timeout (MacTCP's period for "data unacknowledged"). The data stays sent
/// and the connection unchanged; with ``ULPAction/abort`` the kernel usually ends the
/// connection first (`connectionTerminated`).
struct AckWait {
    private let limit: Duration
    private var acked: UInt64 = 0
    private var since = ContinuousClock.now

    init(limit: Duration) { self.limit = limit }

    /// Notes how far the acknowledgements have got; throws once they stood still too long.
    mutating func check(_ ackedThrough: UInt64) throws(MacTCPError) {
        let now = ContinuousClock.now
        if ackedThrough > acked {
            acked = ackedThrough
            since = now
        } else if now - since >= limit {
            throw MacTCPError.commandTimeout.with(
                operation: "send",
                detail: "the peer acknowledged nothing more for the ULP timeout (\(limit)); the data stays sent")
        }
    }
}
