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
        try activeOpen(localPort: localPort, address: .v4(host), remotePort: remotePort, timeout: timeout, options: options)
    }

    /// Opens a connection to a remote address of either family; blocks until it is
    /// established. The `UInt32` form's IPv6 counterpart.
    ///
    /// - Parameters:
    ///   - localPort: The local port; 0 lets the system choose.
    ///   - address: The remote address: IPv4 (not 0) or IPv6 (not `::`; a link-local address
    ///     with its scope, `fe80::1%eth0`).
    ///   - remotePort: The remote port, not 0.
    ///   - timeout: How long to try (`.zero`: up to the ULP timeout, 2 minutes by default).
    ///   - options: ULP timeout and action, and IP header settings for the connection.
    /// - Throws: As ``activeOpen(localPort:host:remotePort:timeout:options:)-9tbhg``;
    ///   ``MacTCPError/ipBadAddr`` also for `::` and for a link-local address without a scope.
    ///
    /// The corresponding MacTCP call is `TCPActiveOpen` (IPv4 only in MacTCP).
    public func activeOpen(
        localPort: UInt16 = 0,
        address: IPAddress,
        remotePort: UInt16,
        timeout: Duration = .zero,
        options: TCPOpenOptions = .init()
    ) throws {
        let deadline = try Self.openDeadline(timeout, options: options)
        try connect(to: [address], name: nil, localPort: localPort, remotePort: remotePort, deadline: deadline, options: options)
    }

    /// Opens a connection to a host given by name or as an address literal; blocks until it
    /// is established.
    ///
    /// A literal (`10.0.0.1`, `::1`, `fe80::1%eth0`) connects directly. A name is resolved
    /// through `resolver` (``DNR/addresses(for:)``: A and AAAA at once, RFC 6724's order,
    /// the families interleaved) and its addresses are tried by Happy Eyeballs (RFC 8305):
    /// the first at once, the next 250 ms later while an earlier one is pending, or at once
    /// when it fails; the first to connect wins and the others are closed, leaving no event,
    /// status or error on the stream (their peers may see a connection open and close). With
    /// a fixed `localPort` the addresses are tried one at a time. The resolution counts
    /// against `timeout`; while it runs the stream has no open in progress.
    ///
    /// - Parameters:
    ///   - localPort: The local port; 0 lets the system choose.
    ///   - host: A host name or an address literal.
    ///   - remotePort: The remote port, not 0.
    ///   - timeout: How long to try, resolution included (`.zero`: up to the ULP timeout).
    ///   - options: ULP timeout and action, and IP header settings for the connection.
    ///   - resolver: The resolver that turns a name into addresses (``DNR/shared``: the
    ///     system's configuration; a ``DNR`` of the program's own, with a Hosts file, say).
    /// - Throws: The resolver's error when the name cannot be resolved
    ///   (``MacTCPError/nameSyntaxErr``, ``MacTCPError/authNameErr``, ``MacTCPError/noAnsErr``, …);
    ///   ``MacTCPError/openFailed`` naming every address tried and why each failed, or when
    ///   the timeout passes; otherwise as ``activeOpen(localPort:address:remotePort:timeout:options:)-5lvt9``.
    ///
    /// The corresponding MacTCP calls are `StrToAddr` followed by `TCPActiveOpen`.
    public func activeOpen(
        localPort: UInt16 = 0,
        host: String,
        remotePort: UInt16,
        timeout: Duration = .zero,
        options: TCPOpenOptions = .init(),
        resolver: DNR = .shared
    ) throws {
        let deadline = try Self.openDeadline(timeout, options: options)
        if let literal = IPAddress(host) {
            try connect(to: [literal], name: nil, localPort: localPort, remotePort: remotePort, deadline: deadline, options: options)
            return
        }
        try checkOpenable(remotePort: remotePort)
        let addresses = try resolver.addresses(for: host, deadline: deadline)
        try connect(to: addresses, name: host, localPort: localPort, remotePort: remotePort, deadline: deadline, options: options)
    }

    /// The blocking open: the race, with the pending sockets polled in between.
    private func connect(
        to addresses: [IPAddress], name: String?, localPort: UInt16, remotePort: UInt16, deadline: Deadline,
        options: TCPOpenOptions
    ) throws {
        var race = try beginRace(
            to: addresses, name: name, localPort: localPort, remotePort: remotePort, deadline: deadline, options: options,
            watched: false)
        do {
            var ready: [Int16]?
            while true {
                if let winner = try advance(&race, ready: ready) {
                    try finish(race, winner: winner)
                    return
                }
                ready = Self.poll(race.pending, deadline: race.wakeDeadline)
            }
        } catch {
            abandon(race)
            throw error
        }
    }

    /// Waits until one of the pending sockets can say something, or the deadline passes:
    /// each socket's poll events (0 for none).
    private static func poll(_ attempts: [ConnectRace.Attempt], deadline: Deadline) -> [Int16] {
        withAttemptDescriptors(attempts[...], []) { fds in
            Sys.poll(fds, events: Sys.pollOut, timeoutMilliseconds: deadline.pollMilliseconds)
        }
    }

    /// Runs `body` with every attempt's descriptor in use (none closes meanwhile); a
    /// descriptor already retired is given as -1, which poll skips.
    private static func withAttemptDescriptors<R>(
        _ attempts: ArraySlice<ConnectRace.Attempt>, _ fds: [Int32], _ body: ([Int32]) -> R
    ) -> R {
        guard let first = attempts.first else { return body(fds) }
        let inUse = first.descriptor.withDescriptor { fd in withAttemptDescriptors(attempts.dropFirst(), fds + [fd], body) }
        return inUse ?? withAttemptDescriptors(attempts.dropFirst(), fds + [-1], body)
    }

    /// The open's deadline (`.zero`: the ULP timeout), after checking the timeout and options.
    static func openDeadline(_ timeout: Duration, options: TCPOpenOptions) throws(MacTCPError) -> Deadline {
        try Timeouts.validate(timeout, operation: ConnectRace.operation)
        try options.validate(operation: ConnectRace.operation)
        return Deadline(timeout: timeout == .zero ? options.ulpTimeout : timeout)
    }

    /// Checks, before a name is resolved, what would fail the open anyway: the port, a
    /// released stream, an open in progress.
    private func checkOpenable(remotePort: UInt16) throws(MacTCPError) {
        try core.withLock { state throws(MacTCPError) in
            try checkNotReleased(state, ConnectRace.operation)
            try beginOpen(&state, ConnectRace.operation, commit: false)
        }
        if remotePort == 0 {
            throw MacTCPError.ipBadAddr.with(operation: ConnectRace.operation, detail: "the remote port must not be 0")
        }
    }

    /// Checks the arguments and the stream's state and puts the stream in the connecting
    /// phase; no socket is made yet (``advance(_:ready:)`` starts the attempts).
    func beginRace(
        to addresses: [IPAddress], name: String?, localPort: UInt16, remotePort: UInt16, deadline: Deadline,
        options: TCPOpenOptions, watched: Bool
    ) throws(MacTCPError) -> ConnectRace {
        let operation = ConnectRace.operation
        var problem: String?
        if remotePort == 0 { problem = "the remote port must not be 0" }
        var usable: [IPAddress] = []
        for address in addresses where problem == nil {
            switch address {
            case .v4(0): problem = "the remote host must not be 0"
            case .v6(let v6) where v6 == .unspecified: problem = "the remote host must not be ::"
            case .v6(let v6) where v6.isLinkLocal && v6.scopeID == 0:
                problem = "\(address) is link-local: name its interface, as in \(address)%eth0"
            default: usable.append(address)
            }
            // A name's addresses that cannot be tried are left out; a literal is refused.
            if name != nil { problem = nil }
        }
        if problem == nil, usable.isEmpty, let name {
            throw MacTCPError.openFailed.with(
                operation: operation, errno: EADDRNOTAVAIL, detail: "\(name) has no address that can be tried (\(addresses))")
        }
        if let problem {
            try core.withLock { state throws(MacTCPError) in try checkNotReleased(state, operation) }
            throw MacTCPError.ipBadAddr.with(operation: operation, detail: problem)
        }
        settleConnection()
        let sockets = ConnectAttempts()
        try core.withLock { state throws(MacTCPError) in
            try beginOpen(&state, operation)
            state.phase = .connecting(sockets)
        }
        return ConnectRace(
            remotes: usable.map { Endpoint($0, port: remotePort) }, localPort: localPort, options: options,
            deadline: deadline, watched: watched, sockets: sockets, name: name)
    }

    /// One step of the race: collects the pending attempts' outcomes (`ready`: what poll
    /// said of each; nil to look without waiting), then starts what is due. Returns the
    /// attempt that connected, nil while the race goes on.
    /// - Throws: `openFailed` when every address has failed or the deadline has passed;
    ///   `connectionTerminated` when `abort` or `release` has interrupted the open; an
    ///   attempt's socket errors (`duplicateSocket`, `insufficientResources`).
    func advance(_ race: inout ConnectRace, ready: [Int16]?) throws(MacTCPError) -> ConnectRace.Attempt? {
        guard isCurrent(race.sockets) else { throw terminated(ConnectRace.operation) }
        let looked = race.pending
        race.pending = []
        for (index, var attempt) in looked.enumerated() {
            let (result, icmp) = connectOutcome(attempt.descriptor, ready: ready.map { Int($0[index]) })
            attempt.icmp += icmp
            if result == 0 {
                race.pending += looked[(index + 1)...]
                return attempt
            }
            if result == SyscallErrors.inProgress {
                race.pending.append(attempt)
            } else {
                drop(attempt, from: &race, errno: Int32(-result))
            }
        }
        while race.mayStartNext {
            let remote = race.remotes[race.next]
            race.next += 1
            let attempt = try startAttempt(to: remote, in: race)
            race.nextStart = Deadline(milliseconds: ConnectRace.attemptDelayMilliseconds)
            if attempt.started < 0 && attempt.started != SyscallErrors.inProgress {
                drop(attempt.attempt, from: &race, errno: Int32(-attempt.started))
            } else {
                race.pending.append(attempt.attempt)
            }
        }
        if race.pending.isEmpty && race.next == race.remotes.count { throw failed(&race) }
        if race.deadline.hasPassed {
            for attempt in race.pending { drop(attempt, from: &race, errno: ETIMEDOUT) }
            race.pending = []
            throw failed(&race)
        }
        return nil
    }

    /// Whether the stream is still in the connecting phase of this race.
    private func isCurrent(_ sockets: ConnectAttempts) -> Bool {
        core.withLock { state in
            guard case .connecting(let current) = state.phase else { return false }
            return current === sockets
        }
    }

    /// The whole open has failed: the failed attempts' ICMP messages are reported, and the
    /// error names every address.
    private func failed(_ race: inout ConnectRace) -> MacTCPError {
        if !race.failedICMP.isEmpty {
            core.withLock { _ in
                for type in race.failedICMP { delivery.post(.icmpReceived, type.rawValue) }
            }
            race.failedICMP = []
        }
        return race.failure()
    }

    /// Closes a failed or losing attempt's socket and records why it failed.
    private func drop(_ attempt: ConnectRace.Attempt, from race: inout ConnectRace, errno: Int32) {
        race.failures.append((attempt.remote, errno))
        race.failedICMP += attempt.icmp
        close(attempt, in: race)
    }

    private func close(_ attempt: ConnectRace.Attempt, in race: ConnectRace) {
        race.sockets.remove(attempt.descriptor)
        if let registration = attempt.registration {
            Reactor.shared.deregister(registration, attempt.descriptor)
        }
        attempt.descriptor.retire()
    }

    /// Makes one attempt's socket (registered with the reactor for async opens) and starts
    /// its non-blocking connect: the attempt, and what connect returned (0, -EINPROGRESS or
    /// -errno).
    private func startAttempt(to remote: Endpoint, in race: ConnectRace) throws(MacTCPError) -> (attempt: ConnectRace.Attempt, started: Int)
    {
        let operation = ConnectRace.operation
        let ipv6 = remote.address.isIPv6
        let fd = Sys.socket(SOCK_STREAM, ipv6: ipv6)
        guard fd >= 0 else {
            let error = -fd
            throw (SyscallErrors.isResourceShortage(error) ? MacTCPError.insufficientResources : MacTCPError.openFailed)
                .with(operation: operation, errno: error, detail: "cannot create a socket")
        }
        let descriptor = Descriptor(fd)
        SocketOptions.applyCommon(fd, ipv6: ipv6)
        SocketOptions.applyConnection(fd, options: race.options, receiveBufferSize: receiveBufferSize, connecting: true)
        if race.localPort != 0 {
            _ = Sys.setOption(fd, SocketOptions.solSocket, SocketOptions.reuseAddress, 1)
            let bound = Sys.bind(fd, .any(port: race.localPort, ipv6: ipv6))
            if bound < 0 {
                descriptor.retire()
                throw (bound == SyscallErrors.addressInUse ? MacTCPError.duplicateSocket : MacTCPError.openFailed).with(
                    operation: operation,
                    errno: Int32(-bound),
                    detail: "cannot use local port \(race.localPort)"
                )
            }
        }
        var registration: Reactor.Registration?
        if race.watched {
            switch Reactor.shared.register(descriptor, events: EpollEvents.stateChanges, handler: self) {
            case .success(let value):
                registration = value
            case .failure(let error):
                descriptor.retire()
                throw error.with(operation: operation)
            }
        }
        race.sockets.add(descriptor)
        let attempt = ConnectRace.Attempt(descriptor: descriptor, registration: registration, remote: remote)
        return (attempt, Sys.connect(fd, remote))
    }

    /// Whether a connect has finished, from the socket's readiness (`ready`: what poll
    /// returned, or nil to look without waiting): 0 when established, -errno when it failed,
    /// -EINPROGRESS while it goes on; and the ICMP errors the kernel queued, with their
    /// exact types.
    func connectOutcome(_ descriptor: Descriptor, ready: Int? = nil) -> (Int, [ICMPMessageType]) {
        descriptor.withDescriptor { fd -> (Int, [ICMPMessageType]) in
            let ready = ready ?? Sys.poll(fd, events: Sys.pollOut, timeoutMilliseconds: 0)
            if ready == 0 { return (SyscallErrors.inProgress, []) }
            if ready > 0 && ready & Int(Sys.pollOut) != 0 && ready & (Sys.pollErr | Sys.pollHup) == 0 {
                return (0, [])  // writable and no error: established
            }
            var observation = Observation()
            serviceErrors(fd, into: &observation)
            let icmp = observation.icmp
            if observation.socketError != 0 { return (-Int(observation.socketError), icmp) }
            let state = Sys.tcpState(fd)
            if state == KernelTCPState.established.rawValue || state == KernelTCPState.closeWait.rawValue { return (0, icmp) }
            if state == KernelTCPState.synSent.rawValue { return (SyscallErrors.inProgress, icmp) }
            // The connect failed on an ICMP error whose queue entry, read just now, took the
            // socket's pending error with it: that entry's errno is the reason.
            return (-Int(observation.icmpErrno != 0 ? observation.icmpErrno : ECONNRESET), icmp)
        } ?? (-Int(EBADF), [])
    }

    /// Makes the winning attempt the stream's connection; the other attempts are closed
    /// first, so they leave nothing on the stream.
    func finish(_ race: ConnectRace, winner: ConnectRace.Attempt) throws(MacTCPError) {
        let operation = ConnectRace.operation
        for attempt in race.pending { close(attempt, in: race) }
        if !winner.icmp.isEmpty {
            core.withLock { _ in
                for type in winner.icmp { delivery.post(.icmpReceived, type.rawValue) }
            }
        }
        let endpoint = winner.descriptor.withDescriptor { fd -> Endpoint in
            if race.options.ulpAction == .report {
                SocketOptions.setUserTimeout(fd, options: race.options, connecting: false)
            }
            return Sys.localEndpoint(fd) ?? .none
        }
        guard let local = endpoint else { throw terminated(operation) }
        let connection = core.withLock { state -> Connection? in
            guard case .connecting(let current) = state.phase, current === race.sockets else { return nil }
            let connection = establish(
                winner.descriptor, registration: winner.registration, options: race.options,
                local: local, remote: winner.remote, passive: false, in: &state)
            signalChange(&state)
            return connection
        }
        guard let connection else { throw terminated(operation) }
        race.sockets.remove(winner.descriptor)
        startWatching(connection)
    }

    /// Gives up an active open (failed, interrupted or cancelled): the stream goes back to
    /// its initial state if it is still this open's, and every attempt's socket is closed.
    func abandon(_ race: ConnectRace) {
        core.withLock { state in
            if case .connecting(let current) = state.phase, current === race.sockets {
                state.phase = .idle
                signalChange(&state)
            }
        }
        for attempt in race.pending { close(attempt, in: race) }
    }
}

// MARK: - async: the active open (suspends instead of blocking)

extension TCPStream {
    /// Opens a connection, suspending (never blocking a thread) until it is established; the
    /// async form of ``activeOpen(localPort:host:remotePort:timeout:options:)-9tbhg``.
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
        try await activeOpen(localPort: localPort, address: .v4(host), remotePort: remotePort, timeout: timeout, options: options)
    }

    /// Opens a connection to an address of either family, suspending until it is
    /// established; the async form of ``activeOpen(localPort:address:remotePort:timeout:options:)-5lvt9``.
    ///
    /// - Parameters:
    ///   - localPort: The local port; 0 lets the system choose.
    ///   - address: The remote address, IPv4 or IPv6.
    ///   - remotePort: The remote port, not 0.
    ///   - timeout: How long to try (`.zero`: up to the ULP timeout).
    ///   - options: ULP timeout and action, and IP header settings for the connection.
    /// - Throws: As the blocking form, and `CancellationError` when the task is cancelled.
    ///
    /// The corresponding MacTCP call is `TCPActiveOpen` (IPv4 only in MacTCP).
    public func activeOpen(
        localPort: UInt16 = 0,
        address: IPAddress,
        remotePort: UInt16,
        timeout: Duration = .zero,
        options: TCPOpenOptions = .init()
    ) async throws {
        let deadline = try Self.openDeadline(timeout, options: options)
        try await connect(to: [address], name: nil, localPort: localPort, remotePort: remotePort, deadline: deadline, options: options)
    }

    /// Opens a connection to a host given by name or as an address literal, suspending until
    /// it is established; the async form of the blocking
    /// `activeOpen(localPort:host:remotePort:timeout:options:)` that takes a name.
    ///
    /// - Parameters:
    ///   - localPort: The local port; 0 lets the system choose.
    ///   - host: A host name or an address literal.
    ///   - remotePort: The remote port, not 0.
    ///   - timeout: How long to try, resolution included (`.zero`: up to the ULP timeout).
    ///   - options: ULP timeout and action, and IP header settings for the connection.
    ///   - resolver: The resolver that turns a name into addresses.
    /// - Throws: As the blocking form, and `CancellationError` when the task is cancelled.
    ///
    /// The corresponding MacTCP calls are `StrToAddr` followed by `TCPActiveOpen`.
    public func activeOpen(
        localPort: UInt16 = 0,
        host: String,
        remotePort: UInt16,
        timeout: Duration = .zero,
        options: TCPOpenOptions = .init(),
        resolver: DNR = .shared
    ) async throws {
        let deadline = try Self.openDeadline(timeout, options: options)
        if let literal = IPAddress(host) {
            try await connect(to: [literal], name: nil, localPort: localPort, remotePort: remotePort, deadline: deadline, options: options)
            return
        }
        try checkOpenable(remotePort: remotePort)
        let addresses = try await resolver.addresses(for: host, deadline: deadline)
        try await connect(to: addresses, name: host, localPort: localPort, remotePort: remotePort, deadline: deadline, options: options)
    }

    /// The async open: the race, waiting for the reactor's word on the pending sockets.
    private func connect(
        to addresses: [IPAddress], name: String?, localPort: UInt16, remotePort: UInt16, deadline: Deadline,
        options: TCPOpenOptions
    ) async throws {
        var race = try beginRace(
            to: addresses, name: name, localPort: localPort, remotePort: remotePort, deadline: deadline, options: options,
            watched: true)
        do {
            while true {
                let seen = changeCount
                if let winner = try advance(&race, ready: nil) {
                    try finish(race, winner: winner)
                    return
                }
                if case .cancelled = await change(since: seen, deadline: race.wakeDeadline) { throw CancellationError() }
            }
        } catch {
            abandon(race)
            throw error
        }
    }
}
