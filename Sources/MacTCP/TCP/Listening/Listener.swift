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

    private init(descriptor: Descriptor, endpoint: Endpoint) {
        self.descriptor = descriptor
        self.endpoint = endpoint
    }

    /// Binds and listens on `port` of every local address (0: the system picks a port);
    /// `armed`: the reactor accepts from the start.
    static func open(port: UInt16, armed: Bool) throws(MacTCPError) -> Listener {
        let fd = Sys.tcpSocket()
        guard fd >= 0 else {
            throw MacTCPError.insufficientResources.with(operation: "passiveOpen", errno: -fd, detail: "cannot create a socket")
        }
        let descriptor = Descriptor(fd)
        _ = Sys.setOption(fd, SocketOptions.solSocket, SocketOptions.reuseAddress, 1)
        SocketOptions.applyListener(fd)
        let bound = Sys.bind(fd, Endpoint(host: 0, port: port))
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
        let listening = Sys.listen(fd, backlog: 4096)
        guard listening >= 0, let endpoint = Sys.localEndpoint(fd) else {
            descriptor.retire()
            throw MacTCPError.insufficientResources.with(operation: "passiveOpen", errno: Int32(-listening), detail: "cannot listen")
        }
        let listener = Listener(descriptor: descriptor, endpoint: endpoint)
        switch Reactor.shared.register(descriptor, events: armed ? EpollEvents.listener : 0, handler: listener) {
        case .success(let registration):
            listener.registration.withLock { $0 = registration }
        case .failure(let error):
            descriptor.retire()
            throw error.with(operation: "passiveOpen")
        }
        return listener
    }

    /// Stops listening; the kernel resets connections still queued.
    ///
    /// `shutdown` first: it ends the listening at once, even while a thread still sleeps in
    /// `poll` on the socket (which keeps it open until that thread leaves), so the port can
    /// be listened on again straight away (`SO_REUSEADDR`), and the sleeper wakes.
    func close() {
        if let registration = registration.withLock({ $0.take() }) {
            Reactor.shared.deregister(registration, descriptor)
        }
        _ = descriptor.withDescriptor { Sys.shutdownBoth($0) }
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
                    // again shortly. (A caller's look leaves the connection queued for the
                    // next look.)
                    let refused = failure != 0 && failure != EAGAIN && failure != EWOULDBLOCK
                    return fromReactor && refused && !descriptor.isRetired ? .retryLater : .stop
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
