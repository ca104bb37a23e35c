// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Synchronization

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// A listening socket owned by the ``ListenerRegistry``.
final class Listener: ReactorHandler {
    let descriptor: Descriptor
    let endpoint: Endpoint
    private let registration = Lock<Reactor.Registration?>(nil)
    /// Held from each `accept` to the end of that connection's hand-off: with the reactor and
    /// a looking thread draining at once, connections would otherwise reach the waiting
    /// streams in another order than the kernel queued them. The value counts the connections
    /// accepted. (Not `Lock<()>`: ThreadSanitizer reports the zero-sized value's access as
    /// made outside the mutex.)
    private let handingOff = Lock<UInt64>(0)
    /// The kernel's accept queue for this socket (`listen`'s backlog).
    private let backlog: Atomic<Int32>

    private init(descriptor: Descriptor, endpoint: Endpoint, backlog: Int32) {
        self.descriptor = descriptor
        self.endpoint = endpoint
        self.backlog = Atomic(backlog)
    }

    /// Binds and listens on `port` of every local address (0: the system picks a port);
    /// `armed`: the reactor accepts from the start.
    ///
    /// The port is bound so that no other user can take it while this server holds it, even
    /// while nothing listens (``park()``): `SO_REUSEPORT`, whose sharing the kernel allows
    /// only between sockets of the same user that all ask for it, instead of `SO_REUSEADDR`,
    /// which would let anyone bind a port that is not listening. `SO_REUSEPORT` also lets the
    /// port be bound and listened on again while connections of an earlier listener linger
    /// in TIME-WAIT (the connections inherit it). A port the system picks is bound again
    /// explicitly, so that it stays bound when the listener is parked.
    ///
    /// The socket is IPv6 with `IPV6_V6ONLY` off (dual stack: IPv4 clients arrive as
    /// IPv4-mapped addresses, which ``Sys/accept(_:)`` gives back as IPv4), or IPv4 where the
    /// machine has no IPv6.
    static func open(port: UInt16, armed: Bool, backlog: Int32 = defaultBacklog) throws(MacTCPError) -> Listener {
        var ipv6 = true
        var fd = Sys.socket(SOCK_STREAM, ipv6: true)
        if fd == -EAFNOSUPPORT {
            ipv6 = false
            fd = Sys.tcpSocket()
        }
        guard fd >= 0 else {
            throw MacTCPError.insufficientResources.with(operation: "passiveOpen", errno: -fd, detail: "cannot create a socket")
        }
        let descriptor = Descriptor(fd)
        _ = Sys.setOption(fd, SocketOptions.solSocket, SocketOptions.reusePort, 1)
        SocketOptions.applyListener(fd, ipv6: ipv6)
        let bound = port == 0 ? bindAnyPort(fd, ipv6: ipv6) : Sys.bind(fd, .any(port: port, ipv6: ipv6))
        if bound < 0 {
            descriptor.retire()
            let error = Int32(-bound)
            if bound == SyscallErrors.addressInUse {
                throw MacTCPError.duplicateSocket.with(
                    operation: "passiveOpen",
                    errno: error,
                    detail: "port \(port) is already in use by another socket"
                )
            }
            throw MacTCPError.ipBadAddr.with(operation: "passiveOpen", errno: error, detail: "cannot bind port \(port)")
        }
        let listening = Sys.listen(fd, backlog: backlog)
        guard listening >= 0, let endpoint = Sys.localEndpoint(fd) else {
            descriptor.retire()
            throw MacTCPError.insufficientResources.with(operation: "passiveOpen", errno: Int32(-listening), detail: "cannot listen")
        }
        let listener = Listener(descriptor: descriptor, endpoint: endpoint, backlog: backlog)
        if let error = listener.register(armed: armed) {
            descriptor.retire()
            throw error
        }
        return listener
    }

    /// The kernel's accept queue for passive opens: at most `net.core.somaxconn` (4096 by
    /// default). A port kept listening (``TCPListeningPort``) sets its own.
    static let defaultBacklog: Int32 = 4096

    /// Sets the accept queue's length (`listen` again: Linux takes a new backlog on a
    /// listening socket). Connections already queued stay.
    func setBacklog(_ value: Int32) {
        backlog.store(value, ordering: .relaxed)
        _ = descriptor.withDescriptor { Sys.listen($0, backlog: value) }
    }

    /// Binds `fd` to a port the system picks, explicitly: a probe socket (`SO_REUSEPORT`
    /// too) is bound to port 0 and `fd` to the port it got, then the probe is closed.
    private static func bindAnyPort(_ fd: Int32, ipv6: Bool) -> Int {
        let probe = Sys.socket(SOCK_STREAM, ipv6: ipv6)
        guard probe >= 0 else { return Int(probe) }
        defer { Sys.close(probe) }
        _ = Sys.setOption(probe, SocketOptions.solSocket, SocketOptions.reusePort, 1)
        if ipv6 { _ = Sys.setOption(probe, Int32(IPPROTO_IPV6), Int32(IPV6_V6ONLY), 0) }
        let bound = Sys.bind(probe, .any(port: 0, ipv6: ipv6))
        guard bound >= 0, let chosen = Sys.localEndpoint(probe) else { return bound < 0 ? bound : -Int(EADDRNOTAVAIL) }
        return Sys.bind(fd, .any(port: chosen.port, ipv6: ipv6))
    }

    private func register(armed: Bool) -> MacTCPError? {
        switch Reactor.shared.register(descriptor, events: armed ? EpollEvents.listener : 0, handler: self) {
        case .success(let value):
            registration.withLock { $0 = value }
            return nil
        case .failure(let error):
            return error.with(operation: "passiveOpen")
        }
    }

    /// Stops listening but keeps the port bound: the kernel resets the connections still
    /// queued and refuses new ones (as while nothing listens), and no other user can bind
    /// the port meanwhile. ``resume(armed:)`` listens again.
    func park() {
        if let registration = registration.withLock({ $0.take() }) {
            Reactor.shared.deregister(registration, descriptor)
        }
        _ = descriptor.withDescriptor { Sys.shutdownBoth($0) }
    }

    /// Listens again on the parked port.
    func resume(armed: Bool) throws(MacTCPError) {
        let listening = descriptor.withDescriptor { Sys.listen($0, backlog: backlog.load(ordering: .relaxed)) } ?? -Int(EBADF)
        if listening < 0 {
            throw (listening == SyscallErrors.addressInUse ? MacTCPError.duplicateSocket : MacTCPError.insufficientResources).with(
                operation: "passiveOpen", errno: Int32(-listening), detail: "cannot listen on port \(endpoint.port) again")
        }
        if let error = register(armed: armed) {
            _ = descriptor.withDescriptor { Sys.shutdownBoth($0) }
            throw error
        }
    }

    /// Stops listening and gives the port up; the kernel resets connections still queued.
    ///
    /// `shutdown` first: it ends the listening at once, even while a thread still sleeps in
    /// `poll` on the socket (which keeps it open until that thread leaves), and the sleeper
    /// wakes.
    func close() {
        park()
        descriptor.retire()
    }

    /// Sleeps until a client is queued, the listener closes, or `waker` is signalled.
    /// Returns false when `poll` fails, so that the caller sleeps another way.
    func sleep(waker: Waker) -> Bool {
        let result = descriptor.withDescriptor { Sys.poll($0, events: Sys.pollIn, orWakeOn: waker.fd) }
        return (result ?? 0) >= 0  // nil: closed, so the stream's state has changed or is about to
    }

    /// Makes the reactor accept (or stop accepting) on this listener. Arming makes epoll look
    /// at the socket at once, so a connection already queued is not missed.
    func arm(_ armed: Bool) {
        registration.withLock { registration in
            if let registration {
                Reactor.shared.modify(registration, descriptor, events: armed ? EpollEvents.listener : 0)
            }
        }
    }

    /// Resets and closes an accepted connection nobody takes.
    static func reset(_ fd: Int32) {
        _ = Sys.setResetOnClose(fd)
        Sys.close(fd)
    }

    /// Hands the connections a kept port accepted while no stream waited (see
    /// ``ListenerRegistry``) to the streams now waiting, in the order they came.
    func handHeld() {
        handingOff.withLock { _ in
            while let held = ListenerRegistry.shared.takeHeld(from: self) {
                var taken: UInt64?
                if !ListenerRegistry.shared.handOff(held, from: self, taken: &taken) { return }
            }
        }
    }

    func handle(events: UInt32) {
        drain(fromReactor: true)
    }

    /// Accepts until the queue is empty (or nobody waits any more), handing each connection
    /// to the registry; with `until`, also stops once the waiting stream with that ticket id
    /// has its connection (what remains queued is taken at the next look, or by the reactor:
    /// arming it makes epoll report a queue that is not empty).
    func drain(fromReactor: Bool, until target: UInt64? = nil) {
        while true {
            enum Step { case next, stop, retryLater }
            let step = handingOff.withLock { acceptedSoFar -> Step in
                var failure: Int32 = 0
                let accepted =
                    descriptor.withDescriptor { fd -> (fd: Int32, peer: Endpoint)? in
                        switch Sys.accept(fd) {
                        case .success(let accepted): return accepted
                        case .failure(let error):
                            failure = error.errno
                            return nil
                        }
                    } ?? nil
                guard let accepted else {
                    // Out of descriptors or memory: the reactor's edge is gone, so it tries
                    // again shortly, while the listener is still armed. (A caller's look
                    // leaves the connection queued for the next look; a parked or closed
                    // listener refuses with EINVAL, and nothing is tried again.)
                    let short = SyscallErrors.isResourceShortage(failure)
                    let registered = registration.withLock { $0 != nil }
                    return fromReactor && short && registered && !descriptor.isRetired ? .retryLater : .stop
                }
                acceptedSoFar += 1
                var taken: UInt64?
                if !ListenerRegistry.shared.handOff(accepted, from: self, taken: &taken) { return .stop }
                return target != nil && taken == target ? .stop : .next
            }
            switch step {
            case .next: continue
            case .stop: return
            case .retryLater:
                Reactor.shared.schedule(after: .milliseconds(100)) { [self] in drain(fromReactor: true) }
                return
            }
        }
    }
}
