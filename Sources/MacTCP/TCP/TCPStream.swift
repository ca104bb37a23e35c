// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The TCP subsystem: the public stream (`TCPStream`, one file per family of MacTCP calls) and
// its value types (results, status, options, events). The calls here validate their arguments
// and the stream's state, then use the engine (`Engine/`: connection state, turns, events,
// changes), the listening policy (`Listening/`), the reactor and the system layer (`System/`);
// nothing here calls the kernel directly.

/// A MacTCP TCP stream: one connection at a time, opened passively or actively, with
/// MacTCP's send, receive, close, abort and status calls and its event routine (the ASR).
///
/// A stream can be used from several threads at once (one thread receiving while another
/// sends is the normal case) and can be opened again after its connection has ended.
///
/// ```swift
/// let server = try TCPStream()
/// try server.passiveOpen(port: 0)                      // a free port
/// let port = server.getSockName().port
/// let client = try TCPStream()
/// try client.activeOpen(host: IPv4.loopback, remotePort: port)
/// try server.wait()
/// try client.send("hello")
/// let result = try server.receive(timeout: .seconds(5))
/// print(String(decoding: result.data, as: UTF8.self))  // → hello
/// ```
///
/// The corresponding MacTCP call for creating a stream is `TCPCreate`; the Python `mactcp`
/// module's is `TCPCreate(size)`.
public final class TCPStream: Sendable {
    /// The stream's life: which kind of connection it has, if any.
    enum Phase {
        /// No connection: never opened, aborted, or an open failed.
        case idle
        /// A passive open is waiting for a client.
        case listening(PendingPassiveOpen)
        /// An active open is in progress on these sockets (one per address being tried).
        case connecting(ConnectAttempts)
        /// A connection exists (it may have ended; see `Connection.end`).
        case connected(Connection)
    }

    /// A passive open waiting for a client.
    struct PendingPassiveOpen {
        let ticket: ListenerRegistry.Ticket
        let options: TCPOpenOptions
        var timer: Reactor.Timer?
    }

    /// The stream's state, under `core`'s lock. Every stream has one, and a server keeps
    /// thousands of streams waiting, so the fields are laid out small: the flags and the
    /// address fill the phase's tail padding, and the rare passive-open failure is boxed.
    struct State {
        var phase = Phase.idle
        var released = false
        /// Async calls have suspended on this stream: the reactor watches its data.
        var suspendsTasks = false
        /// The stream has an ASR or an event sequence (the event queue's answer, copied here
        /// when either is set: ``TCPStream/isListenedFor(_:)`` asks on every change).
        var listened = false
        var sockName = Endpoint.none
        /// The port this stream passive-opened on last: it holds it (the port stays bound to
        /// this process) until released (``ListenerRegistry/release(_:)``).
        var heldPort: UInt16?

        /// The pending passive open's ticket, if one is pending.
        var pendingTicket: ListenerRegistry.Ticket? {
            if case .listening(let pending) = phase { return pending.ticket }
            return nil
        }
        var epoch: UInt64 = 0
        /// Counts changes that async calls wait for (see `TCPStream+Changes.swift`).
        var changes: UInt64 = 0
        var waiters: [UInt64: Waiter] = [:]
        var nextWaiterID: UInt64 = 0
        /// The waker of a thread asleep in `wait()` in `poll` on the listener; every change
        /// signals it.
        var waker: Waker?
        private var failureBox: FailureBox?

        /// The failure of the last passive open, until `wait()` reports it.
        var passiveFailure: MacTCPError? {
            get { failureBox?.error }
            set { failureBox = newValue.map(FailureBox.init) }
        }
    }

    /// A passive open's failure, kept out of line (48 bytes a stream would otherwise carry).
    final class FailureBox: Sendable {
        let error: MacTCPError
        init(_ error: MacTCPError) { self.error = error }
    }

    let core = Lock(State())
    let delivery = EventDelivery<TCPEvent>()
    /// The receive buffer size asked for at creation; nil for the kernel's autotuning.
    let receiveBufferSize: Int?

    /// Creates a stream.
    ///
    /// - Parameter receiveBufferSize: The receive buffer, and so the window offered to peers,
    ///   in bytes (at least 4096, MacTCP's minimum); nil leaves the kernel's autotuning on.
    /// - Throws: ``MacTCPError/invalidLength`` when the size is below 4096.
    ///
    /// The corresponding MacTCP call is `TCPCreate`.
    public init(receiveBufferSize: Int? = nil) throws {
        if let size = receiveBufferSize, size < 4096 || size > Int(Int32.max) {
            throw MacTCPError.invalidLength.with(
                operation: "init",
                detail: "receiveBufferSize must be at least 4096 bytes (MacTCP's minimum) and at most \(Int32.max), not \(size)"
            )
        }
        self.receiveBufferSize = receiveBufferSize
        try Reactor.start(for: "TCPStream.init")
    }

    deinit {
        release()
    }

    /// The asynchronous service routine: called with each event and its detail.
    ///
    /// It runs on one of the library's event threads, never on the thread that made a call and
    /// never on the thread that watches the sockets; one stream's events arrive in order, one at
    /// a time, and none is dropped, with one exception made for floods: an
    /// ``TCPEvent/icmpReceived`` still waiting to be delivered is replaced by the next one (a
    /// remote host can send ICMP errors without limit), so at most one waits, with the latest
    /// detail. The event sequence (``events``) follows the same rule. Any stream call, blocking
    /// ones included, may be made from
    /// it: while routines block, more event threads start, so other streams' events still come
    /// (a few milliseconds later), up to 256 threads; routines that block waiting for events of
    /// other streams must not be more than that. The event threads block the application's
    /// signals.
    /// See ``TCPEvent`` for the events and their details. The stream keeps the routine until
    /// ``release()`` (after which the events already queued are still delivered); a routine
    /// that captures its stream keeps the stream alive until then.
    ///
    /// The corresponding MacTCP field is the `notifyProc` of `TCPCreate`; in Python, `asr`.
    public var asr: (@Sendable (TCPEvent, Int) -> Void)? {
        get { delivery.handler.map(TCPEvent.routine(calling:)) }
        set {
            delivery.handler = TCPEvent.rawRoutine(calling: newValue)
            listenersChanged()
        }
    }

    /// Whether no passive open is pending (true also when none was ever started).
    ///
    /// The corresponding Python `mactcp` call is `isdone()`.
    public var isDone: Bool {
        settlePassiveOpen()
        return core.withLock { state in
            if case .listening = state.phase { return false }
            return true
        }
    }

    /// Blocks until the pending passive open completes, and throws its failure once.
    ///
    /// Returns at once when no passive open is pending.
    ///
    /// - Throws: The passive open's failure: ``MacTCPError/commandTimeout`` (no client in
    ///   time), ``MacTCPError/connectionTerminated`` (cancelled by `abort` or `release`);
    ///   ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding Python `mactcp` call is `wait()`.
    public func wait() throws {
        var entering = true
        // A client already queued is taken at once. While nothing has the reactor accept on
        // the port, this thread sleeps in `poll` on the listener and takes its client itself
        // when it comes, as a blocking `accept` does; otherwise the reactor accepts while the
        // thread sleeps.
        while true {
            settlePassiveOpen()
            guard let (listener, waker) = beginPolling() else { break }
            entering = false
            let slept = listener.sleep(waker: waker)
            core.withLock { $0.waker = nil }
            waker.close()
            if !slept { break }
        }
        var sleep: ListenerRegistry.Sleep?
        defer { if let sleep { ListenerRegistry.shared.endSleep(sleep) } }
        let failure = try core.wait(until: .never) { state throws(MacTCPError) -> MacTCPError?? in
            // A wait that begins after release() is a later call; one that was waiting when
            // release() cancelled the passive open gets that failure.
            defer { entering = false }
            if state.released && (entering || state.passiveFailure == nil) {
                throw MacTCPError.invalidStreamPtr.with(operation: "wait", detail: "the stream has been released")
            }
            if case .listening(let pending) = state.phase {
                // (Another thread may have aborted and passive-opened the stream again.)
                if sleep?.ticket != pending.ticket {
                    if let old = sleep { ListenerRegistry.shared.endSleep(old) }
                    sleep = ListenerRegistry.shared.beginSleep(pending.ticket)
                }
                return nil
            }
            defer { state.passiveFailure = nil }
            return .some(state.passiveFailure)
        }
        if let failure = failure ?? nil { throw failure }
    }

    /// Before `wait()` sleeps: the listener to sleep on with this thread's waker, registered
    /// so that every change of the stream wakes the thread; nil to sleep on the state lock
    /// (the passive open is over, another thread already polls, or the reactor accepts).
    private func beginPolling() -> (Listener, Waker)? {
        guard let ticket = core.withLock({ $0.pendingTicket }), let listener = ListenerRegistry.shared.pollableListener(ticket),
            let waker = Waker.make()
        else { return nil }
        let registered = core.withLock { state -> Bool in
            guard !state.released, state.waker == nil, state.pendingTicket == ticket else { return false }
            state.waker = waker
            return true
        }
        guard registered else {
            waker.close()
            return nil
        }
        return (listener, waker)
    }

    /// The local address and port of the stream: of its connection, or of the port its
    /// passive open waits on (the real port also when 0 was asked for). `(0, 0)` before any
    /// open and after `release()`.
    ///
    /// The corresponding Python `mactcp` call is `GetSockName()`.
    public func getSockName() -> (host: UInt32, port: UInt16) {
        core.withLock { state in
            state.released ? (0, 0) : (state.sockName.host, state.sockName.port)
        }
    }

    /// The local address of the stream's connection or pending passive open, of either
    /// family: ``getSockName()``'s host for IPv6 too (`::` while a passive open waits, the
    /// port's listener taking both families); `.v4(0)` before any open and after `release()`.
    public var localAddress: IPAddress {
        core.withLock { state in state.released ? .v4(0) : state.sockName.address }
    }

    /// The peer's address, of either family (an IPv4 client of a passive open is `.v4`);
    /// `.v4(0)` without a connection. It stays readable after the connection has ended.
    public var remoteAddress: IPAddress {
        core.withLock { state in
            guard !state.released, case .connected(let connection) = state.phase else { return .v4(0) }
            return connection.remote.address
        }
    }

    /// Releases the stream: aborts its connection (the peer gets a reset and the ASR
    /// ``TCPEvent/terminate`` with ``TCPTerminationReason/ulpAbort``), cancels a pending
    /// passive open (``TCPEvent/passiveOpenDone`` with ``MacTCPError/connectionTerminated``)
    /// and closes the socket. Calls blocked on the stream return with
    /// ``MacTCPError/connectionTerminated``; every later call throws
    /// ``MacTCPError/invalidStreamPtr``. Releasing twice does nothing. `deinit` releases too.
    ///
    /// The corresponding MacTCP call is `TCPRelease`.
    public func release() {
        let previous = core.withLock { state -> Phase? in
            guard !state.released else { return nil }
            state.released = true
            let phase = state.phase
            state.phase = .idle
            state.sockName = .none
            switch phase {
            case .idle, .connecting:
                break
            case .listening(let pending):
                cancelPassiveOpen(pending, in: &state, failure: .connectionTerminated)
            case .connected(let connection):
                endConnectionByUser(connection)
            }
            if let port = state.heldPort {
                state.heldPort = nil
                ListenerRegistry.shared.release(port)
            }
            delivery.finish()
            signalChange(&state)
            return phase
        }
        if case .connecting(let attempts) = previous {
            attempts.interrupt()  // the open closes its sockets
        }
    }

    // MARK: - Shared internals

    /// Throws `invalidStreamPtr` after `release()`.
    func checkNotReleased(_ state: State, _ operation: String) throws(MacTCPError) {
        if state.released {
            throw MacTCPError.invalidStreamPtr.with(operation: operation, detail: "the stream has been released")
        }
    }

    /// The connection a data call may use, or the MacTCP error for the stream's state.
    /// `closedOK`: receiving stays allowed after our own close and after a graceful end.
    /// (`inout` though it only reads: every send and receive asks, and a `State` passed by
    /// value, `borrowing` included, is copied whole for the call.)
    ///
    /// Inlined for the common case, a live connection nobody has closed; every other state
    /// takes ``checkedConnection(_:_:closedOK:)``, which names the error.
    @inline(__always)
    func usableConnection(_ state: inout State, _ operation: String, closedOK: Bool) throws(MacTCPError) -> Connection {
        if !state.released, case .connected(let connection) = state.phase, connection.end == nil,
            closedOK || !connection.weClosed
        {
            return connection
        }
        return try checkedConnection(&state, operation, closedOK: closedOK)
    }

    /// ``usableConnection(_:_:closedOK:)`` for every state: the connection, or the error.
    @inline(never)
    private func checkedConnection(_ state: inout State, _ operation: String, closedOK: Bool) throws(MacTCPError) -> Connection {
        try checkNotReleased(state, operation)
        switch state.phase {
        case .idle:
            throw MacTCPError.connectionDoesntExist.with(operation: operation, detail: "the stream has no connection")
        case .listening:
            throw MacTCPError.connectionDoesntExist.with(
                operation: operation,
                detail: "the stream's passive open is still waiting for a client"
            )
        case .connecting:
            throw MacTCPError.connectionDoesntExist.with(operation: operation, detail: "the stream's active open is in progress")
        case .connected(let connection):
            if connection.isAbnormallyEnded {
                throw MacTCPError.connectionTerminated.with(operation: operation, detail: "the connection was broken")
            }
            if !closedOK && (connection.weClosed || connection.end == .graceful) {
                throw MacTCPError.connectionClosing.with(
                    operation: operation,
                    detail: connection.end == .graceful
                        ? "the connection has been closed by both sides" : "close() was already called on this connection"
                )
            }
            return connection
        }
    }

    /// Runs `body` under the lock with the stream's usable connection (see
    /// ``usableConnection(_:_:closedOK:)``). Before it answers `connectionClosing`, an answer
    /// from what the stream last knew, it looks at the socket once: a reset that came after
    /// our close makes the answer `connectionTerminated`, as for any abnormal end.
    func withUsableConnection<T>(
        _ operation: String, closedOK: Bool, _ body: (Connection, inout State) throws(MacTCPError) -> T
    ) throws(MacTCPError) -> T {
        do {
            return try core.withLock { state throws(MacTCPError) -> T in
                try body(try usableConnection(&state, operation, closedOK: closedOK), &state)
            }
        } catch  where error.code == MacTCPError.connectionClosing.code {
            let current = core.withLock { state -> Connection? in
                if case .connected(let connection) = state.phase { return connection }
                return nil
            }
            guard let current else { throw error }
            observe(current, reported: 0, forceAll: true)
            return try core.withLock { state throws(MacTCPError) -> T in
                try body(try usableConnection(&state, operation, closedOK: closedOK), &state)
            }
        }
    }

    /// Whether `connection` is still this stream's current connection.
    func isCurrent(_ connection: Connection, _ state: State) -> Bool {
        if case .connected(let current) = state.phase { return current === connection }
        return false
    }

    /// Brings the bookkeeping of the current connection up to date with the kernel (a reset
    /// may have arrived that the reactor has not handled yet), before deciding whether the
    /// stream may be opened again.
    func settleConnection() {
        observe(nil, reported: 0, forceAll: true)
    }

    /// Throws `connectionExists` unless the stream may be opened now; cleans up an ended
    /// connection and starts a new epoch.
    /// With `commit: false` only checks, changing nothing.
    func beginOpen(_ state: inout State, _ operation: String, commit: Bool = true) throws(MacTCPError) {
        try checkNotReleased(state, operation)
        switch state.phase {
        case .idle:
            break
        case .listening:
            throw MacTCPError.connectionExists.with(operation: operation, detail: "a passive open is already pending on this stream")
        case .connecting:
            throw MacTCPError.connectionExists.with(operation: operation, detail: "an active open is already in progress on this stream")
        case .connected(let connection):
            guard connection.end != nil else {
                throw MacTCPError.connectionExists.with(operation: operation, detail: "the stream already has a connection")
            }
            guard commit else { return }
            dispose(connection)
            state.phase = .idle
        }
        guard commit else { return }
        state.epoch &+= 1
        state.passiveFailure = nil
    }

    /// Stops watching a connection's socket and closes it once nobody uses it.
    /// Called with the state lock held.
    func dispose(_ connection: Connection) {
        stopWatching(connection)
        connection.descriptor.retire()
    }

    /// Takes a connection off the reactor: its registration and its ULP timer. Called with
    /// the state lock held.
    func stopWatching(_ connection: Connection) {
        if let registration = connection.registration {
            Reactor.shared.deregister(registration, connection.descriptor)
            connection.registration = nil
        }
        if let timer = connection.ulpTimer {
            Reactor.shared.cancel(timer)
            connection.ulpTimer = nil
        }
    }

    /// Makes a newly established connection the stream's: its phase, its socket name and
    /// what the reactor watches. Called with the state lock held; returns the connection.
    func establish(
        _ descriptor: Descriptor,
        registration: Reactor.Registration?,
        options: TCPOpenOptions,
        local: Endpoint,
        remote: Endpoint,
        passive: Bool,
        in state: inout State
    ) -> Connection {
        let connection = Connection(
            descriptor: descriptor,
            registration: registration,
            watched: registration == nil ? 0 : EpollEvents.stateChanges,
            options: options,
            local: local,
            remote: remote,
            passive: passive,
            epoch: state.epoch
        )
        state.phase = .connected(connection)
        state.sockName = local
        updateDataWatch(&state)
        return connection
    }

    /// Ends a connection because this side aborted it (abort or release): reset, discard
    /// data both ways, deliver `.terminate(ulpAbort)`. Called with the state lock held.
    func endConnectionByUser(_ connection: Connection) {
        if connection.end == nil {
            connection.end = .abnormal(.ulpAbort)
        }
        if !connection.terminateDelivered {
            connection.terminateDelivered = true
            let reason: TCPTerminationReason = connection.end == .graceful ? .ulpClose : .ulpAbort
            delivery.post(.terminate, reason.rawValue)
        }
        if connection.end != .graceful {
            _ = connection.descriptor.withDescriptor { Sys.disconnect($0) }
        }
        dispose(connection)
    }
}

// MARK: - The events as an asynchronous sequence

extension TCPStream {
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
