// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

extension TCPStream {
    /// The most one receive reads, whatever `maxLength` says (bounds the buffer allocated).
    static let largestRead = 4 << 20

    /// Receives data: returns as soon as some is available, up to `maxLength` bytes.
    ///
    /// Urgent data (RFC 793: every byte up to the urgent pointer) comes before normal data
    /// and never in the same result. The first result of an urgent region has `urgent` set;
    /// the result ending with the region's last byte has `mark` set (both when one result
    /// holds it all); results in between have neither. Receiving stays allowed after this
    /// side's `close()`.
    ///
    /// - Parameters:
    ///   - timeout: How long to wait for data; `.zero` waits without limit.
    ///   - maxLength: The most bytes to return, at least 1.
    /// - Returns: The data with its urgent and mark flags.
    /// - Throws: ``MacTCPError/commandTimeout`` when no data came in time;
    ///   ``MacTCPError/connectionClosing`` when the peer has closed and every byte has been
    ///   read; ``MacTCPError/connectionTerminated`` when the connection was reset, aborted or
    ///   timed out; ``MacTCPError/connectionDoesntExist`` without a connection;
    ///   ``MacTCPError/invalidLength`` for `maxLength` below 1 or a negative timeout;
    ///   ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding MacTCP call is `TCPRcv`.
    public func receive(timeout: Duration, maxLength: Int = 65536) throws -> TCPReceived {
        let (data, urgent, mark) = try receive(
            timeout: timeout, length: maxLength, into: NewArray(maxLength: min(maxLength, Self.largestRead)))
        return TCPReceived(data: data, urgent: urgent, mark: mark)
    }

    /// Receives data into a buffer: returns as soon as some is available, with how many
    /// bytes it wrote at the start of `buffer`, up to its size. No array is made: a program
    /// that reads into a buffer of its own allocates nothing per receive.
    ///
    /// The results follow the same rules as ``receive(timeout:maxLength:)-71ulw``'s:
    /// urgent data never shares a result with normal data, the first result of an urgent
    /// region has `urgent` set and the one ending with its last byte has `mark` set. The
    /// two forms may be mixed on one stream.
    ///
    /// - Parameters:
    ///   - buffer: Where the bytes go, at least one byte long; written only during the call.
    ///   - timeout: How long to wait for data; `.zero` waits without limit.
    /// - Returns: How many bytes were written, at least one, with the urgent and mark flags.
    /// - Throws: As ``receive(timeout:maxLength:)-71ulw``, and
    ///   ``MacTCPError/invalidLength`` for an empty buffer.
    ///
    /// The corresponding MacTCP call is `TCPRcv`, which also reads into the caller's buffer
    /// (`rcvBuff`, `rcvBuffLen`).
    public func receive(into buffer: UnsafeMutableRawBufferPointer, timeout: Duration) throws -> TCPReceivedCount {
        let (count, urgent, mark) = try receive(timeout: timeout, length: buffer.count, into: CallerBuffer(buffer: buffer))
        return TCPReceivedCount(count: count, urgent: urgent, mark: mark)
    }

    /// The blocking receive, into a new array or the caller's buffer. (Inlined into each
    /// form, as the steps it calls, so that each is the code the other form was before.)
    @inline(__always)
    private func receive<Sink: ReceiveSink>(
        timeout: Duration,
        length: Int,
        into sink: Sink
    ) throws(MacTCPError) -> (Sink.Bytes, urgent: Bool, mark: Bool) {
        let (connection, deadline, hasTurn) = try beginReceive(timeout: timeout, length: length, isBuffer: Sink.isCallerBuffer)
        var outcome = ReceiveOutcome()
        var holdsTurn = hasTurn
        defer { endReceive(connection, outcome, holdsTurn: holdsTurn) }
        if !hasTurn {
            holdsTurn = try waitForTurn(.receive, on: connection, until: deadline, "receive")
            if !holdsTurn { throw Self.receiveTurnTimedOut }
        }
        while true {
            let attempt =
                connection.descriptor.withDescriptor { fd in
                    attemptReceive(fd, connection, into: sink, wait: deadline.pollMilliseconds)
                } ?? .gone
            if let received = try conclude(attempt, connection, deadline) {
                outcome = ReceiveOutcome(urgent: received.urgent, mark: received.mark)
                return received
            }
        }
    }

    /// Receives data, suspending (never blocking a thread) until some is available; the
    /// async form of ``receive(timeout:maxLength:)-71ulw``, with the same results and
    /// errors.
    ///
    /// Cancelling the task makes the call throw `CancellationError` at once; a cancelled
    /// receive consumes nothing, so the data stays for the next receive.
    ///
    /// - Parameters:
    ///   - timeout: How long to wait for data; `.zero` waits without limit.
    ///   - maxLength: The most bytes to return, at least 1.
    /// - Returns: The data with its urgent and mark flags.
    /// - Throws: As the blocking form, and `CancellationError` when the task is cancelled.
    ///
    /// The corresponding MacTCP call is `TCPRcv`.
    public func receive(timeout: Duration, maxLength: Int = 65536) async throws -> TCPReceived {
        let (connection, deadline, hasTurn) = try beginReceive(timeout: timeout, length: maxLength, isBuffer: false)
        let sink = NewArray(maxLength: min(maxLength, Self.largestRead))
        var outcome = ReceiveOutcome()
        var holdsTurn = hasTurn
        defer { endReceive(connection, outcome, holdsTurn: holdsTurn) }
        if !hasTurn {
            holdsTurn = try await awaitTurn(.receive, on: connection, until: deadline, "receive")
            if !holdsTurn { throw Self.receiveTurnTimedOut }
        }
        while true {
            try Task.checkCancellation()
            let seen = changeCount
            let attempt =
                connection.descriptor.withDescriptor { fd in
                    attemptReceive(fd, connection, into: sink, wait: 0)
                } ?? .gone
            if let (data, urgent, mark) = try conclude(attempt, connection, deadline, timedOutOnWait: false) {
                outcome = ReceiveOutcome(urgent: urgent, mark: mark)
                return TCPReceived(data: data, urgent: urgent, mark: mark)
            }
            switch await change(since: seen, deadline: deadline) {
            case .changed: continue
            case .timedOut: throw MacTCPError.commandTimeout.with(operation: "receive", detail: "no data arrived in time")
            case .cancelled: throw CancellationError()
            }
        }
    }

    /// What the end of a receive needs to know of its result (its flags, not its bytes: a
    /// copy of the result would be one more reference to its array to take and give back).
    struct ReceiveOutcome {
        /// Data was returned.
        var delivered = false
        var urgent = false
        var mark = false

        init() {}

        init(urgent: Bool, mark: Bool) {
            delivered = true
            self.urgent = urgent
            self.mark = mark
        }
    }

    /// One attempt's outcome; `Bytes`: the received bytes as the receive keeps them (an
    /// array, or a count written into the caller's buffer).
    enum ReceiveAttempt<Bytes> {
        case data(Bytes, urgent: Bool, mark: Bool)
        case wait
        /// The peer's FIN, every byte read; `errorPending`: the `poll` before the read saw
        /// `POLLERR` (a pending error or error-queue entry).
        case endOfStream(errorPending: Bool)
        case failed(Int)
        case gone
    }

    /// Checks the stream's state and the arguments before a receive, counts the receive, and
    /// takes the receive turn if it is free (true), the common case, so one lock does all.
    /// `length`: `maxLength`, or the caller's buffer's size (`isBuffer`).
    private func beginReceive(timeout: Duration, length: Int, isBuffer: Bool) throws(MacTCPError) -> (Connection, Deadline, Bool) {
        let operation = "receive"
        try Timeouts.validate(timeout, operation: operation)
        let (connection, hasTurn) = try core.withLock { state throws(MacTCPError) -> (Connection, Bool) in
            let connection = try usableConnection(&state, operation, closedOK: true)
            if length < 1 {
                throw MacTCPError.invalidLength.with(
                    operation: operation,
                    detail: isBuffer ? "the buffer must hold at least 1 byte" : "maxLength must be at least 1, not \(length)"
                )
            }
            return (connection, connection.enter(.receive))
        }
        return (connection, Deadline(timeout: timeout), hasTurn)
    }

    /// A receive's timeout passed while an earlier receive held the turn.
    private static var receiveTurnTimedOut: MacTCPError {
        MacTCPError.commandTimeout.with(operation: "receive", detail: "an earlier receive held the connection until the timeout")
    }

    /// After any receive: `.dataArrival` may come again; a mark ends the urgent region; if
    /// data was read after the peer's FIN, `.closing` may be due (``noteIfAllRead(_:)``); the
    /// turn goes to a waiting receive, if any.
    private func endReceive(_ connection: Connection, _ outcome: ReceiveOutcome, holdsTurn: Bool) {
        let peerClosed = core.withLock { state -> Bool in
            if connection.leave(.receive, holdingTurn: holdsTurn) { signalChange(&state) }
            connection.dataArrivalArmed = true
            if outcome.urgent { connection.urgentDiscovered = true }
            if outcome.mark {
                connection.urgentAnnounced = false
                connection.urgentDiscovered = false
            }
            return outcome.delivered && connection.peerClosed && !connection.closingDelivered
        }
        if peerClosed { noteIfAllRead(connection) }
    }

    /// Waits up to `wait` milliseconds (0: not at all) for data, then reads once.
    @inline(__always)
    private func attemptReceive<Sink: ReceiveSink>(
        _ fd: Int32,
        _ connection: Connection,
        into sink: Sink,
        wait: Int32
    ) -> ReceiveAttempt<Sink.Bytes> {
        let ready = Sys.poll(fd, events: Sys.pollIn | Sys.pollPri, timeoutMilliseconds: wait)
        if ready < 0 { return .failed(ready) }
        if ready == 0 { return .wait }
        if ready & Int(Sys.pollIn | Sys.pollPri) == 0 && ready & Sys.pollErr != 0 && ready & Sys.pollHup == 0 {
            // Only the error queue or an ICMP report: the shared path takes it.
            observe(connection, reported: EpollEvents.error)
            return .wait
        }
        // A read at the urgent mark fails with EAGAIN while a signal is pending for the thread,
        // though the byte is there (Linux's tcp_recvmsg). The poll said urgent data is there:
        // read again (the signal is delivered on the way back; a bounded number of times),
        // rather than wait for a readiness already reported: an async receive would sleep
        // until its deadline.
        let urgentPending = ready & Int(Sys.pollPri) != 0
        var attempt = ReceiveAttempt<Sink.Bytes>.wait
        var cursor = connection.receiveCursor
        defer { connection.receiveCursor = cursor }
        for _ in 0...(urgentPending ? 100 : 0) {
            attempt = read(fd, connection, cursor: &cursor, urgentPending: urgentPending, into: sink)
            guard case .wait = attempt else { break }
        }
        if case .endOfStream = attempt { return .endOfStream(errorPending: ready & Sys.pollErr != 0) }
        return attempt
    }

    /// What an attempt means: the result, nil to try again, or the error.
    private func conclude<Bytes>(
        _ attempt: ReceiveAttempt<Bytes>,
        _ connection: Connection,
        _ deadline: Deadline,
        timedOutOnWait: Bool = true
    ) throws(MacTCPError) -> (Bytes, urgent: Bool, mark: Bool)? {
        let operation = "receive"
        switch attempt {
        case .data(let bytes, let urgent, let mark):
            return (bytes, urgent, mark)
        case .wait:
            try checkStillConnected(connection, operation)
            if timedOutOnWait && deadline.hasPassed {
                throw MacTCPError.commandTimeout.with(operation: operation, detail: "no data arrived in time")
            }
            return nil
        case .endOfStream(let errorPending):
            try endOfStream(connection, operation, errorPending: errorPending)
        case .failed(let result):
            if let error = failure(result, on: connection, operation: operation) { throw error }
            return nil
        case .gone:
            throw terminated(operation)
        }
    }

    /// Reads once, applying the urgent-mark algorithm (linux-mapping §1): the kernel stops
    /// a read in front of the last urgent byte; `sockatmark` tells when the next byte is
    /// that byte, which is then read as the end of the region.
    private func read<Sink: ReceiveSink>(
        _ fd: Int32,
        _ connection: Connection,
        cursor: inout Connection.ReceiveCursor,
        urgentPending: Bool,
        into sink: Sink
    ) -> ReceiveAttempt<Sink.Bytes> {
        var urgent = false
        if urgentPending && !cursor.urgentMode {
            // Everything up to the urgent pointer is urgent data: a new region starts here.
            cursor.urgentMode = true
            urgent = true
        }
        var segment = SegmentRead(fd: fd, urgentPending: urgentPending)
        let bytes = sink.read(&segment, expectingSmall: cursor.expectsSmallReads)
        if segment.count > 0 {
            cursor.expectsSmallReads = segment.count < ByteArray.smallRead
            if segment.failure < 0 && segment.failure != SyscallErrors.again {
                // A read after the first failed: the kernel reported the connection's error
                // there, once, so it is recorded now (the bytes read before it are the result).
                _ = failure(segment.failure, on: connection, operation: "receive")
            }
        }
        if segment.count == 0 {
            if urgent { cursor.urgentMode = false }
            if segment.failure == 0 { return .endOfStream(errorPending: false) }
            return segment.failure == SyscallErrors.again ? .wait : .failed(segment.failure)
        }
        if segment.mark {
            if !cursor.urgentMode { urgent = true }
            cursor.urgentMode = false
        }
        return .data(bytes, urgent: urgent, mark: segment.mark)
    }

    /// End of stream: `connectionClosing`, unless the connection was reset or aborted (the
    /// reactor may have taken the reset's error first), in which case `connectionTerminated`.
    ///
    /// A reset that comes after the peer's FIN still reads as end of file (Linux keeps the
    /// FIN's end-of-file and files the reset as `EPIPE` in `SO_ERROR`), so the socket's pending
    /// error is looked at first: the connection ended abnormally, and says so.
    /// A pending error or error-queue entry raises `POLLERR`, so the `poll` that preceded the
    /// read tells whether the full look (error queue, `SO_ERROR`, `TCP_INFO`, `SIOCINQ`) is
    /// needed. (A reset that arrives after that `poll` is as late as one arriving after the
    /// read: either way the FIN came first.)
    private func endOfStream(_ connection: Connection, _ operation: String, errorPending: Bool) throws(MacTCPError) -> Never {
        if errorPending {
            observe(connection, reported: 0, forceAll: true)
        }
        let broken = core.withLock { state -> Bool in
            guard isCurrent(connection, state), !connection.isAbnormallyEnded else { return true }
            connection.peerClosed = true
            deliverClosing(connection)
            return false
        }
        if broken { throw terminated(operation) }
        throw MacTCPError.connectionClosing.with(
            operation: operation,
            detail: "the peer has closed the connection and every byte has been read"
        )
    }

    /// After a read once the peer has closed: if nothing is left, `.closing` is due now (no
    /// further edge will come to tell the reactor).
    private func noteIfAllRead(_ connection: Connection) {
        let unread = connection.descriptor.withDescriptor { Sys.inputQueue($0) } ?? -1
        if unread == 0 {
            core.withLock { state in
                if isCurrent(connection, state) { deliverClosing(connection) }
            }
        }
    }
}

/// Where a receive puts its bytes: a new array (``TCPStream/receive(timeout:maxLength:)``)
/// or the caller's buffer (``TCPStream/receive(into:timeout:)``).
private protocol ReceiveSink {
    /// The received bytes as the receive keeps them.
    associatedtype Bytes
    /// Whether the bytes go to the caller's buffer (for the wording of errors).
    static var isCallerBuffer: Bool { get }
    /// Makes the read; `expectingSmall`: the last read was small.
    func read(_ segment: inout SegmentRead, expectingSmall: Bool) -> Bytes
}

/// A new array, sized by the last read: a small read is copied from the stack into an array
/// of its size, a large one made in place in an array of `maxLength`.
private struct NewArray: ReceiveSink {
    let maxLength: Int
    static var isCallerBuffer: Bool { false }

    func read(_ segment: inout SegmentRead, expectingSmall: Bool) -> [UInt8] {
        ByteArray.read(upTo: maxLength, expectingSmall: expectingSmall, from: &segment)
    }
}

/// The caller's buffer: one read into it; the count of bytes written.
private struct CallerBuffer: ReceiveSink {
    let buffer: UnsafeMutableRawBufferPointer
    static var isCallerBuffer: Bool { true }

    func read(_ segment: inout SegmentRead, expectingSmall: Bool) -> Int {
        max(segment.fill(buffer), 0)
    }
}

/// One non-blocking read into a receive's result, stopping at the urgent mark.
private struct SegmentRead: ByteSource {
    let fd: Int32
    /// Urgent data is pending: the read ends with the last urgent byte, if it reaches it.
    let urgentPending: Bool
    /// Bytes read; 0 with `failure` 0: end of stream.
    var count = 0
    /// The negative errno of the last read that failed (with bytes read: of a read after
    /// the first).
    var failure = 0
    /// The last byte read is the last urgent byte.
    var mark = false

    @inline(__always)
    mutating func fill(_ raw: UnsafeMutableRawBufferPointer) -> Int {
        if urgentPending && Sys.atMark(fd) == 1 {
            // The next byte is the last urgent byte: it ends the region by itself.
            takeMark(raw)
        } else {
            readStoppingAtMark(raw)
        }
        return count
    }

    /// Reads on after a read that filled its buffer. Linux stops a read in front of the
    /// last urgent byte only when the read has already copied something, so a read that
    /// starts there would run through it: at the mark, the byte is taken as the end of the
    /// region when urgent data was pending, and otherwise left for the next receive (as the
    /// single read would have stopped in front of it). The bytes read so far are the result
    /// whatever happens here; a failure is kept in `failure`, as the kernel reports a
    /// connection's error only once.
    @inline(__always)
    mutating func fillMore(_ raw: UnsafeMutableRawBufferPointer) -> Int {
        // A result ends with its mark.
        if mark { return 0 }
        let before = count
        if Sys.atMark(fd) == 1 {
            if urgentPending { takeMark(raw) }
        } else {
            readStoppingAtMark(raw)
        }
        return count - before
    }

    /// One read into `room`, and the last urgent byte too when the read stopped right in
    /// front of it.
    @inline(__always)
    private mutating func readStoppingAtMark(_ room: UnsafeMutableRawBufferPointer) {
        let n = Sys.receive(fd, room, flags: Sys.msgDontWait)
        guard n > 0 else {
            if n < 0 { failure = n }
            return
        }
        count += n
        if urgentPending && n < room.count && Sys.atMark(fd) == 1 {
            takeMark(UnsafeMutableRawBufferPointer(rebasing: room[n...]))
        }
    }

    /// Reads the last urgent byte into the start of `room` (not empty) as the result's end.
    private mutating func takeMark(_ room: UnsafeMutableRawBufferPointer) {
        let m = Sys.receive(fd, UnsafeMutableRawBufferPointer(rebasing: room[..<1]), flags: Sys.msgDontWait)
        if m == 1 {
            count += 1
            mark = true
        } else if m < 0 {
            failure = m
        }
    }
}
