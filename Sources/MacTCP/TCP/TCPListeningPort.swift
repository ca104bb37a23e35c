// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// A port kept listening between passive opens: clients who arrive while every stream is
/// busy wait in the kernel's queue and are taken, in order, by the next streams that
/// passive-open the port.
///
/// MacTCP's rule, kept by default, is that a port listens only while a stream waits on it:
/// a client arriving while every stream of a server's pool is busy is refused, and the
/// clients the kernel had queued are reset when the last waiting stream gets its connection.
/// A server that must not refuse anyone holds a `TCPListeningPort` for as long as it serves:
///
/// ```swift
/// let listening = try TCPListeningPort(port: 0, backlog: 128)
/// let stream = try TCPStream()
/// try stream.passiveOpen(port: listening.port)   // as always; clients queue meanwhile
/// print(listening.port > 0)  // → true
/// stream.release()
/// listening.close()
/// ```
///
/// Passive opens on the port behave exactly as section 3 of the specification says (remote
/// filters, the order of the waiting streams, one connection per open); only the time when
/// no stream waits changes. Linux's rules apply to the queue: a backlog of N (capped by
/// `net.core.somaxconn`) holds N + 1 completed connections; further clients' SYNs are
/// dropped, so they retry (after 1 s, 3 s, …) rather than being reset, unless
/// `net.ipv4.tcp_abort_on_overflow` is set. ``close()`` (or the object's end) returns the
/// port to MacTCP's rule: when no stream waits, every client still queued is reset.
///
/// There is no corresponding MacTCP call; MacTCP had no listen backlog.
public final class TCPListeningPort: Sendable {
    /// The local port kept listening (the one the system chose, when 0 was asked).
    public let port: UInt16
    /// The accept queue's length asked for.
    public let backlog: Int
    private let open = Lock(true)

    /// The default backlog, as `listen(2)` programs commonly use.
    public static let defaultBacklog = 128

    /// Keeps `port` listening until ``close()``.
    ///
    /// - Parameters:
    ///   - port: The local port, 1…65535, or 0 for one the system chooses.
    ///   - backlog: The kernel's accept queue, 1…65535 (capped by `net.core.somaxconn`).
    /// - Throws: `MacTCPError.invalidLength` for a backlog out of range; `duplicateSocket`
    ///   when another socket has the port; `insufficientResources` when the system refuses
    ///   a socket.
    public init(port: UInt16, backlog: Int = TCPListeningPort.defaultBacklog) throws {
        guard (1...65_535).contains(backlog) else {
            throw MacTCPError.invalidLength.with(operation: "TCPListeningPort", detail: "the backlog must be 1…65535, not \(backlog)")
        }
        self.backlog = backlog
        try Reactor.start(for: "TCPListeningPort")
        self.port = try ListenerRegistry.shared.keep(port: port, backlog: Int32(backlog))
    }

    /// Ends the kept port: when no stream waits on it, the port stops listening and every
    /// client still queued is reset (as MacTCP does when the last waiting stream is served).
    /// Streams waiting keep waiting. Closing twice does nothing more.
    public func close() {
        let wasOpen = open.withLock { open -> Bool in
            defer { open = false }
            return open
        }
        if wasOpen { ListenerRegistry.shared.unkeep(port) }
    }

    /// Whether the port is still kept listening.
    public var isOpen: Bool { open.withLock { $0 } }

    deinit {
        close()
    }
}
