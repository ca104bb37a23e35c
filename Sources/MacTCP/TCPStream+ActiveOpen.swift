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
        let operation = "activeOpen"
        try Timeouts.validate(timeout, operation: operation)
        try options.validate(operation: operation)
        if host == 0 || remotePort == 0 {
            try core.withLock { state throws(MacTCPError) in try checkNotReleased(state, operation) }
            throw MacTCPError.ipBadAddr.with(
                operation: operation,
                detail: host == 0 ? "the remote host must not be 0" : "the remote port must not be 0"
            )
        }
        let fd = Sys.tcpSocket()
        guard fd >= 0 else {
            let error = -fd
            throw (Errno.isResourceShortage(error) ? MacTCPError.insufficientResources : MacTCPError.openFailed)
                .with(operation: operation, errno: error, detail: "cannot create a socket")
        }
        let descriptor = Descriptor(fd)
        settleConnection()
        do {
            try core.withLock { state throws(MacTCPError) in
                try beginOpen(&state, operation)
                state.phase = .connecting(descriptor)
            }
        } catch {
            descriptor.retire()
            throw error
        }
        do {
            let connection = try connect(descriptor, localPort: localPort, remote: Sys.Endpoint(host: host, port: remotePort),
                                         timeout: timeout, options: options, operation: operation)
            startWatching(connection)
        } catch {
            let ours = core.withLock { state -> Bool in
                guard case .connecting(let current) = state.phase, current === descriptor else { return false }
                state.phase = .idle
                return true
            }
            descriptor.retire()
            core.broadcast()
            throw ours ? error : terminated(operation)
        }
    }

    /// Binds, connects and waits for the handshake on the caller's thread; installs the
    /// connection. Throws `openFailed` and friends; the caller cleans up.
    private func connect(
        _ descriptor: Descriptor,
        localPort: UInt16,
        remote: Sys.Endpoint,
        timeout: Duration,
        options: TCPOpenOptions,
        operation: String
    ) throws(MacTCPError) -> Connection {
        let deadline = Deadline(timeout: timeout == .zero ? options.ulpTimeout : timeout)
        let outcome = try descriptor.withDescriptor { fd throws(MacTCPError) -> Connection? in
            SocketOptions.applyCommon(fd)
            SocketOptions.applyConnection(fd, options: options, receiveBufferSize: receiveBufferSize, connecting: true)
            if localPort != 0 {
                _ = Sys.setOption(fd, SocketOptions.solSocket, SocketOptions.reuseAddress, 1)
                let bound = Sys.bind(fd, Sys.Endpoint(host: 0, port: localPort))
                if bound < 0 {
                    throw (bound == Errno.addressInUse ? MacTCPError.duplicateSocket : MacTCPError.openFailed).with(
                        operation: operation,
                        errno: Int32(-bound),
                        detail: "cannot use local port \(localPort)"
                    )
                }
            }
            var result = Sys.connect(fd, remote)
            while result == Errno.inProgress {
                let ready = Sys.poll(fd, events: Sys.pollOut, timeoutMilliseconds: deadline.pollMilliseconds)
                if ready == 0 {
                    if deadline.hasPassed { result = -Int(ETIMEDOUT) }
                    continue
                }
                var observation = Observation()
                serviceErrors(fd, into: &observation)
                core.withLock { _ in
                    for type in observation.icmp { events.post(.icmpReceived, type.rawValue) }
                }
                if observation.socketError != 0 {
                    result = -Int(observation.socketError)
                } else if Sys.tcpState(fd) == KernelTCPState.established.rawValue
                    || Sys.tcpState(fd) == KernelTCPState.closeWait.rawValue
                {
                    result = 0
                }
            }
            if result < 0 {
                let interrupted = core.withLock { state -> Bool in
                    guard case .connecting(let current) = state.phase else { return true }
                    return current !== descriptor
                }
                if interrupted { throw terminated(operation) }
                let text = IPv4.string(remote.host)
                throw MacTCPError.openFailed.with(
                    operation: operation,
                    errno: Int32(-result),
                    detail: "cannot connect to \(text):\(remote.port)"
                )
            }
            if options.ulpAction == .report {
                SocketOptions.setUserTimeout(fd, options: options, connecting: false)
            }
            let local = Sys.localEndpoint(fd) ?? .none
            let peer = Sys.peerEndpoint(fd) ?? remote
            return core.withLock { state -> Connection? in
                guard case .connecting(let current) = state.phase, current === descriptor else { return nil }
                let connection = Connection(descriptor: descriptor, options: options, local: local, remote: peer,
                                            passive: false, epoch: state.epoch)
                state.phase = .connected(connection)
                state.sockName = local
                return connection
            }
        }
        guard let connection = outcome ?? nil else { throw terminated(operation) }
        return connection
    }
}
