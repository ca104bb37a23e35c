// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

extension TCPStream {
    /// Opens a connection to a remote host and port; blocks until it is established.
    ///
    /// - Parameters:
    ///   - localPort: The local port; 0 lets the system choose.
    ///   - host: The remote IPv4 address (host byte order), not 0.
    ///   - remotePort: The remote port, not 0.
    ///   - timeout: How long to try (`.zero`: up to the ULP timeout, 2 minutes by default).
    ///   - options: ULP timeout and action, and IP header settings for the connection.
    /// - Throws: ``MacTCPError/openFailed`` (with the errno) when the peer refuses, is
    ///   unreachable or does not answer in time; ``MacTCPError/ipBadAddr`` when `host` or
    ///   `remotePort` is 0; ``MacTCPError/duplicateSocket`` when `localPort` is taken;
    ///   ``MacTCPError/connectionExists`` when the stream is connected or opening;
    ///   ``MacTCPError/connectionTerminated`` when `abort` or `release` interrupts it;
    ///   ``MacTCPError/invalidLength`` for a negative timeout or bad options;
    ///   ``MacTCPError/insufficientResources`` when no socket can be created;
    ///   ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding MacTCP call is `TCPActiveOpen`.
    public func activeOpen(
        localPort: UInt16 = 0,
        host: UInt32,
        remotePort: UInt16,
        timeout: Duration = .zero,
        options: TCPOpenOptions = .init()
    ) throws {
        let opening = try beginActiveOpen(
            localPort: localPort,
            host: host,
            remotePort: remotePort,
            timeout: timeout,
            options: options,
            watched: false
        )
        do {
            var result = opening.started
            while result == SyscallErrors.inProgress {
                let ready =
                    opening.descriptor.withDescriptor {
                        Sys.poll($0, events: Sys.pollOut, timeoutMilliseconds: opening.deadline.pollMilliseconds)
                    } ?? -Int(EBADF)
                if ready == 0 && opening.deadline.hasPassed {
                    result = -Int(ETIMEDOUT)
                } else if ready != 0 {
                    result = connectOutcome(opening, ready: ready)
                }
            }
            try finishActiveOpen(opening, result: result)
        } catch {
            abandon(opening)
            throw error
        }
    }

    /// An active open under way.
    struct ActiveOpening {
        let descriptor: Descriptor
        /// The reactor registration, for async opens (they wait for the connect's wakeup).
        let registration: Reactor.Registration?
        let remote: Endpoint
        let options: TCPOpenOptions
        let deadline: Deadline
        /// What the non-blocking connect returned: 0, -EINPROGRESS or -errno.
        let started: Int
        static let operation = "activeOpen"
    }

    /// Checks the arguments and the stream's state, creates the socket (registered with the
    /// reactor when `watched`, for async opens) and starts a non-blocking connect. The stream
    /// is then in the connecting phase.
    func beginActiveOpen(
        localPort: UInt16,
        host: UInt32,
        remotePort: UInt16,
        timeout: Duration,
        options: TCPOpenOptions,
        watched: Bool
    ) throws(MacTCPError) -> ActiveOpening {
        let operation = ActiveOpening.operation
        try Timeouts.validate(timeout, operation: operation)
        try options.validate(operation: operation)
        if host == 0 || remotePort == 0 {
            try core.withLock { state throws(MacTCPError) in try checkNotReleased(state, operation) }
            throw MacTCPError.ipBadAddr.with(
                operation: operation,
                detail: host == 0 ? "the remote host must not be 0" : "the remote port must not be 0"
            )
        }
        settleConnection()
        try core.withLock { state throws(MacTCPError) in try beginOpen(&state, operation, commit: false) }
        let fd = Sys.tcpSocket()
        guard fd >= 0 else {
            let error = -fd
            throw (SyscallErrors.isResourceShortage(error) ? MacTCPError.insufficientResources : MacTCPError.openFailed)
                .with(operation: operation, errno: error, detail: "cannot create a socket")
        }
        let descriptor = Descriptor(fd)
        SocketOptions.applyCommon(fd)
        SocketOptions.applyConnection(fd, options: options, receiveBufferSize: receiveBufferSize, connecting: true)
        if localPort != 0 {
            _ = Sys.setOption(fd, SocketOptions.solSocket, SocketOptions.reuseAddress, 1)
            let bound = Sys.bind(fd, Endpoint(host: 0, port: localPort))
            if bound < 0 {
                descriptor.retire()
                throw (bound == SyscallErrors.addressInUse ? MacTCPError.duplicateSocket : MacTCPError.openFailed).with(
                    operation: operation,
                    errno: Int32(-bound),
                    detail: "cannot use local port \(localPort)"
                )
            }
        }
        var registration: Reactor.Registration?
        if watched {
            switch Reactor.shared.register(descriptor, events: EpollEvents.stateChanges, handler: self) {
            case .success(let value):
                registration = value
            case .failure(let error):
                descriptor.retire()
                throw error.with(operation: operation)
            }
        }
        do {
            try core.withLock { state throws(MacTCPError) in
                try beginOpen(&state, operation)
                state.phase = .connecting(descriptor)
            }
        } catch {
            if let registration { Reactor.shared.deregister(registration, descriptor) }
            descriptor.retire()
            throw error
        }
        let remote = Endpoint(host: host, port: remotePort)
        return ActiveOpening(
            descriptor: descriptor,
            registration: registration,
            remote: remote,
            options: options,
            deadline: Deadline(timeout: timeout == .zero ? options.ulpTimeout : timeout),
            started: Sys.connect(fd, remote)
        )
    }

    /// Whether the connect has finished, from the socket's readiness (`ready`: what poll
    /// returned, or nil to look without waiting): 0 when established, -errno when it failed,
    /// -EINPROGRESS while it goes on. ICMP errors queued by the kernel are delivered as
    /// `.icmpReceived` with their exact type.
    func connectOutcome(_ opening: ActiveOpening, ready: Int? = nil) -> Int {
        opening.descriptor.withDescriptor { fd -> Int in
            let ready = ready ?? Sys.poll(fd, events: Sys.pollOut, timeoutMilliseconds: 0)
            if ready == 0 { return SyscallErrors.inProgress }
            if ready > 0 && ready & Int(Sys.pollOut) != 0 && ready & (Sys.pollErr | Sys.pollHup) == 0 {
                return 0  // writable and no error: established
            }
            var observation = Observation()
            serviceErrors(fd, into: &observation)
            if !observation.icmp.isEmpty {
                core.withLock { _ in
                    for type in observation.icmp { delivery.post(.icmpReceived, type.rawValue) }
                }
            }
            if observation.socketError != 0 { return -Int(observation.socketError) }
            let state = Sys.tcpState(fd)
            if state == KernelTCPState.established.rawValue || state == KernelTCPState.closeWait.rawValue { return 0 }
            if state == KernelTCPState.synSent.rawValue { return SyscallErrors.inProgress }
            // The connect failed on an ICMP error whose queue entry, read just now, took the
            // socket's pending error with it: that entry's errno is the reason.
            return -Int(observation.icmpErrno != 0 ? observation.icmpErrno : ECONNRESET)
        } ?? -Int(EBADF)
    }

    /// Turns the connect's result into a connection, or into the error to throw.
    func finishActiveOpen(_ opening: ActiveOpening, result: Int) throws(MacTCPError) {
        let operation = ActiveOpening.operation
        let stillOurs = core.withLock { state -> Bool in
            guard case .connecting(let current) = state.phase else { return false }
            return current === opening.descriptor
        }
        guard stillOurs else { throw terminated(operation) }
        if result < 0 {
            throw MacTCPError.openFailed.with(
                operation: operation,
                errno: Int32(-result),
                detail: "cannot connect to \(IPv4.string(opening.remote.host)):\(opening.remote.port)"
            )
        }
        let endpoint = opening.descriptor.withDescriptor { fd -> Endpoint in
            if opening.options.ulpAction == .report {
                SocketOptions.setUserTimeout(fd, options: opening.options, connecting: false)
            }
            return Sys.localEndpoint(fd) ?? .none
        }
        guard let local = endpoint else { throw terminated(operation) }
        let peer = opening.remote
        let connection = core.withLock { state -> Connection? in
            guard case .connecting(let current) = state.phase, current === opening.descriptor else { return nil }
            let connection = establish(
                opening.descriptor, registration: opening.registration, options: opening.options,
                local: local, remote: peer, passive: false, in: &state)
            signalChange(&state)
            return connection
        }
        guard let connection else { throw terminated(operation) }
        startWatching(connection)
    }

    /// Gives up an active open (failed, interrupted or cancelled): the stream goes back to
    /// its initial state if it is still this open's, and the socket is closed.
    func abandon(_ opening: ActiveOpening) {
        core.withLock { state in
            if case .connecting(let current) = state.phase, current === opening.descriptor {
                state.phase = .idle
                signalChange(&state)
            }
        }
        if let registration = opening.registration {
            Reactor.shared.deregister(registration, opening.descriptor)
        }
        opening.descriptor.retire()
    }
}

// MARK: - async: the active open (suspends instead of blocking)

extension TCPStream {
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
            while result == SyscallErrors.inProgress {
                let seen = changeCount
                result = connectOutcome(opening)
                guard result == SyscallErrors.inProgress else { break }
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
}
