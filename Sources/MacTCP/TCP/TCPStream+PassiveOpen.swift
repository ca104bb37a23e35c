// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

extension TCPStream {
    /// Waits for an incoming connection on a local port; returns at once.
    ///
    /// Several streams may passive-open the same port at the same time: each takes exactly
    /// one incoming connection, in the order the streams called `passiveOpen` (the first
    /// waiting stream whose filter matches gets the next connection). While no stream waits
    /// on a port, nothing listens there and clients are refused; the port stays bound to this
    /// process until the stream is released (or passive-opens another port), so another local
    /// user cannot take it between two passive opens. Use ``wait()-6ptai`` or
    /// ``isDone`` to learn when the connection has arrived; the ASR also gets
    /// ``TCPEvent/passiveOpenDone`` with detail 0 or the failure's code. ``getSockName()``
    /// gives the local address and real port as soon as this returns.
    ///
    /// - Parameters:
    ///   - port: The local port; 0 lets the system choose a free one.
    ///   - remoteHost: Accept only this peer address (0: any). Others are reset.
    ///   - remotePort: Accept only this peer port (0: any). Others are reset.
    ///   - timeout: How long to wait for a client (`.zero`: without limit); on expiry the
    ///     passive open fails with ``MacTCPError/commandTimeout``.
    ///   - options: ULP timeout and action, and IP header settings for the connection.
    /// - Throws: ``MacTCPError/duplicateSocket`` when a socket outside the library uses the
    ///   port; ``MacTCPError/connectionExists`` when the stream is connected or already
    ///   opening; ``MacTCPError/invalidLength`` for a negative timeout or bad options;
    ///   ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding MacTCP call is `TCPPassiveOpen`.
    public func passiveOpen(
        port: UInt16 = 0,
        remoteHost: UInt32 = 0,
        remotePort: UInt16 = 0,
        timeout: Duration = .zero,
        options: TCPOpenOptions = .init()
    ) throws {
        try passiveOpen(
            port: port, filter: remoteHost == 0 ? nil : .v4(remoteHost), remotePort: remotePort, timeout: timeout,
            options: options)
    }

    /// Waits for a client on a local port, accepting only a client from `remoteAddress`
    /// (IPv4 or IPv6); the filter's IPv6 counterpart of
    /// ``passiveOpen(port:remoteHost:remotePort:timeout:options:)-(_,_,_,Duration,_)``.
    ///
    /// Every passive open takes IPv6 clients as well as IPv4 ones (the port's listener is
    /// dual-stack); an IPv4 client, IPv4-mapped on the wire included, has a `.v4` address.
    ///
    /// - Parameters:
    ///   - port: The local port; 0 lets the system choose a free one.
    ///   - remoteAddress: Accept only this peer address (`.v4(0)` or `::`: any). Others are reset.
    ///   - remotePort: Accept only this peer port (0: any). Others are reset.
    ///   - timeout: How long to wait for a client (`.zero`: without limit).
    ///   - options: ULP timeout and action, and IP header settings for the connection.
    /// - Throws: As ``passiveOpen(port:remoteHost:remotePort:timeout:options:)-(_,_,_,Duration,_)``.
    ///
    /// The corresponding MacTCP call is `TCPPassiveOpen` (IPv4 only in MacTCP).
    public func passiveOpen(
        port: UInt16 = 0,
        remoteAddress: IPAddress,
        remotePort: UInt16 = 0,
        timeout: Duration = .zero,
        options: TCPOpenOptions = .init()
    ) throws {
        let any = remoteAddress == .v4(0) || remoteAddress == .v6(.unspecified)
        try passiveOpen(port: port, filter: any ? nil : remoteAddress, remotePort: remotePort, timeout: timeout, options: options)
    }

    private func passiveOpen(
        port: UInt16, filter: IPAddress?, remotePort: UInt16, timeout: Duration, options: TCPOpenOptions
    ) throws(MacTCPError) {
        let operation = "passiveOpen"
        try Timeouts.validate(timeout, operation: operation)
        try options.validate(operation: operation)
        settleConnection()
        try core.withLock { state throws(MacTCPError) in
            try beginOpen(&state, operation)
            let (ticket, endpoint) = try ListenerRegistry.shared.enqueue(
                self,
                port: port,
                remoteAddress: filter,
                remotePort: remotePort,
                watched: isListenedFor(state),
                holding: state.heldPort
            )
            state.heldPort = endpoint.port
            var pending = PendingPassiveOpen(ticket: ticket, options: options)
            if timeout > .zero {
                let epoch = state.epoch
                pending.timer = Reactor.shared.schedule(after: timeout) { [weak self] in
                    self?.passiveOpenTimedOut(epoch: epoch)
                }
            }
            state.phase = .listening(pending)
            state.sockName = endpoint
        }
    }

    /// Takes an accepted connection for the pending passive open `ticket`. Runs on the
    /// thread that accepted it (the reactor, or a caller looking at a waiting stream), without
    /// the state lock; returns false when the passive open is no longer pending.
    func adopt(_ fd: Int32, peer: Endpoint, ticket: ListenerRegistry.Ticket) -> Bool {
        guard
            let options = core.withLock({ state -> TCPOpenOptions? in
                guard case .listening(let pending) = state.phase, pending.ticket == ticket else { return nil }
                return pending.options
            })
        else { return false }
        // SO_OOBINLINE, TCP_NODELAY, IP_RECVERR and the default user timeout come from the
        // listener (accepted sockets inherit them).
        SocketOptions.applyAccepted(fd, options: options, receiveBufferSize: receiveBufferSize)
        let descriptor = Descriptor(fd)
        let local = Sys.localEndpoint(fd) ?? .none
        let connection = core.withLock { state -> Connection? in
            guard case .listening(let pending) = state.phase, pending.ticket == ticket else { return nil }
            if let timer = pending.timer { Reactor.shared.cancel(timer) }
            let connection = establish(
                descriptor, registration: nil, options: options, local: local, remote: peer, passive: true, in: &state)
            state.passiveFailure = nil
            delivery.post(.passiveOpenDone, 0)
            signalChange(&state)
            return connection
        }
        guard let connection else {
            // Aborted or released between the two looks: the caller resets the connection
            // (and so closes the descriptor).
            return false
        }
        startWatching(connection)
        return true
    }

    /// Accepts what the kernel has queued for a pending passive open (see ``ListenerRegistry``:
    /// while nothing needs the reactor to, the thread that looks accepts). Called without the
    /// state lock.
    func settlePassiveOpen() {
        guard let ticket = core.withLock({ $0.pendingTicket }) else { return }
        ListenerRegistry.shared.settle(ticket)
    }

    /// Ends a pending passive open with `failure`. Called with the state lock held.
    func cancelPassiveOpen(_ pending: PendingPassiveOpen, in state: inout State, failure: MacTCPError) {
        if let timer = pending.timer { Reactor.shared.cancel(timer) }
        ListenerRegistry.shared.cancel(pending.ticket)
        state.passiveFailure = failure.with(
            operation: "passiveOpen",
            detail: failure == .commandTimeout ? "no client connected in time" : "the passive open was cancelled"
        )
        delivery.post(.passiveOpenDone, failure.code)
        signalChange(&state)
    }

    private func passiveOpenTimedOut(epoch: UInt64) {
        // A client the kernel has queued but nobody has accepted yet came in time.
        settlePassiveOpen()
        core.withLock { state in
            guard state.epoch == epoch, case .listening(let pending) = state.phase else { return }
            state.phase = .idle
            cancelPassiveOpen(pending, in: &state, failure: .commandTimeout)
        }
    }
}

// MARK: - async: waiting for the passive open (never blocks a thread: it suspends, and the reactor resumes it)

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
}
