// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The listening policy of passive opens: one listening socket per local port, shared by every
// stream that waits on it, handed to the waiting streams in order, not listening when none
// waits (MacTCP's rule) and kept bound while the process holds the port. This file is the
// policy; `Listener.swift` the listening socket itself, `WaiterQueue` the streams waiting on
// one port, and `PortTable` indexes the listeners by port. It calls the system layer and the
// reactor; the passive open and the kept port (`TCPListeningPort`) in `TCP/` are its users.

import Synchronization

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// The library's listening sockets, one per local port, shared by every stream that
/// passive-opens that port.
///
/// MacTCP had no listen backlog: each stream's passive open takes exactly one connection,
/// several streams may wait on the same port, and while nobody waits nothing listens. Here
/// the library owns one listening socket per port while at least one stream waits on it.
/// Each accepted connection goes to the first waiting stream (in `passiveOpen` order) whose
/// remote filter matches; a connection that matches no waiting stream is reset. When the
/// last waiting stream has its connection (or its passive open ends) the listener stops
/// listening, which resets anything the kernel had already queued and refuses new clients.
///
/// The port stays this process's meanwhile: the listener is *parked* (bound, not
/// listening) while any stream that passive-opened on it has not been released or moved to
/// another port, so that another local user cannot bind the port between two passive opens
/// and answer the server's next clients. The next passive open listens on it again; the last
/// holder's release closes it (``release(_:)``).
///
/// Who accepts: the reactor, while some waiting stream must learn of its connection without
/// a caller asking (an ASR or event sequence, async calls), a remote filter must reset
/// strangers at once, or more streams wait than the kernel's queue is sure to hold: the
/// listener is then *armed* in epoll. Otherwise connections wait in the kernel's queue and the
/// thread that looks (`wait()`, `isDone`, `status()`, a passive open's timeout) accepts them
/// itself, handing each to the first waiting stream as the reactor would; a thread asleep in
/// `wait()` sleeps in `poll` on the listener and a ``Waker``. A server thread that comes back
/// to `wait()` after serving a connection so takes the next one without a thread hand-off, as
/// a blocking `accept` does. (A thread that must sleep while the listener is armed, or while
/// another thread already polls for the same stream, sleeps on the stream's lock and keeps
/// the listener armed: ``beginSleep(_:)``.)
final class ListenerRegistry: Sendable {
    static let shared = ListenerRegistry()

    /// Identifies one waiting passive open.
    struct Ticket: Equatable, Sendable {
        let port: UInt16
        let id: UInt64
    }

    /// A stream waiting on a port, with its remote filter. A class: the entry's list moves
    /// and copies waiters as streams come and go, and a copy of a weak reference costs
    /// atomic updates of the stream's side table where a retain of the waiter is one add.
    final class Waiter {
        let id: UInt64
        weak var stream: TCPStream?
        /// The filter's address; nil: any.
        let remoteAddress: IPAddress?
        let remotePort: UInt16
        /// Counted in the queue's `watched`: the stream has an ASR or event sequence, or async
        /// calls, or a remote filter (a stranger must be reset at once, not when someone next
        /// looks). Changed only under the table's lock (see `Entry`).
        @exclusivity(unchecked) private(set) var watched: Bool

        init(id: UInt64, stream: TCPStream, remoteAddress: IPAddress?, remotePort: UInt16, listened: Bool) {
            self.id = id
            self.stream = stream
            self.remoteAddress = remoteAddress
            self.remotePort = remotePort
            watched = false
            watch(listened)
        }

        /// Sets `watched` from whether the stream's events are listened for; a filter keeps it.
        func watch(_ listened: Bool) {
            watched = listened || remoteAddress != nil || remotePort != 0
        }

        func accepts(_ peer: Endpoint) -> Bool {
            (remoteAddress == nil || remoteAddress == peer.address) && (remotePort == 0 || remotePort == peer.port)
        }
    }

    /// One port's listener and the streams waiting on it, oldest first. A class so that the
    /// table's lock changes it in place: a copy of the waiting list would cost a retain per
    /// waiter on every passive open and every connection.
    ///
    /// Every `var` is used only under the table's lock, which already keeps accesses apart:
    /// `@exclusivity(unchecked)` drops the runtime's access tracking (a call into the runtime
    /// and a lookup in the thread's access set per access, several per connection).
    fileprivate final class Entry {
        let listener: Listener
        /// Waiting streams in `passiveOpen` order.
        @exclusivity(unchecked) var waiters: WaiterQueue
        /// No stream waits any more and the listener is being closed: a new passive open on
        /// the port waits until it is gone (its bind would fail while the socket exists).
        @exclusivity(unchecked) var closing = false
        /// The streams that hold the port (a passive open holds it, ``release(_:)`` lets it
        /// go): while one does, the listener is parked rather than closed when no stream waits.
        @exclusivity(unchecked) var holders: Int
        /// No stream waits and the listener is parked: bound, not listening.
        @exclusivity(unchecked) var parked = false
        /// Threads asleep in `wait()` on this port's streams.
        @exclusivity(unchecked) var sleepers = 0
        /// Whether the listener is armed in epoll (the reactor accepts).
        @exclusivity(unchecked) var armed: Bool
        /// The ports kept listening on this port (``TCPListeningPort``): while one is, the
        /// listener listens even when no stream waits, and clients wait in the kernel's queue.
        @exclusivity(unchecked) var kept = 0
        /// The accept queue's length: the kept port's backlog, or the default.
        @exclusivity(unchecked) var backlog = Listener.defaultBacklog
        /// Connections a kept port accepted while no stream waited (a race with a passive
        /// open that ended): given to the next waiting streams first, in order, never reset.
        @exclusivity(unchecked) var held: [(fd: Int32, peer: Endpoint)] = []

        init(listener: Listener, first: Waiter?, holders: Int) {
            self.listener = listener
            waiters = first.map { WaiterQueue(first: $0) } ?? WaiterQueue()
            armed = first?.watched ?? false
            self.holders = holders
        }

        /// After a waiter left: when none is left, parks the listener while a stream holds
        /// the port, or marks it closing (true: the caller closes it).
        func waiterLeft() -> Bool {
            guard waiters.isEmpty else {
                rearm()
                return false
            }
            if kept > 0 {
                // A kept port listens on: clients wait in the kernel's queue.
                rearm()
                return false
            }
            if holders > 0 {
                listener.park()
                parked = true
                armed = false
                return false
            }
            closing = true
            return true
        }

        /// Arms or disarms the listener as the waiters need. Called with the table lock held.
        ///
        /// Also armed while more streams wait than `lazyLimit`: the kernel's accept queue
        /// (at most `net.core.somaxconn`) must hold every connection a waiting stream is due
        /// while nobody accepts.
        func rearm() {
            let wanted = waiters.watched > 0 || sleepers > 0 || waiters.count > min(Self.lazyLimit, Int(backlog))
            guard !closing, !parked, wanted != armed else { return }
            armed = wanted
            listener.arm(wanted)
        }

        static let lazyLimit = 64
    }

    private struct Table {
        var entries = PortTable<Entry>()
        var nextID: UInt64 = 1
    }

    private let table = Lock(Table())

    /// Adds a waiting stream on `port` (0: a new listener on a port the system chooses) and
    /// returns its ticket and the listener's local address.
    func enqueue(
        _ stream: TCPStream,
        port: UInt16,
        remoteAddress: IPAddress?,
        remotePort: UInt16,
        watched: Bool,
        holding held: UInt16?
    ) throws(MacTCPError) -> (Ticket, Endpoint) {
        // Never nil: the wait has no deadline. (The thread closing a listener closes it
        // right after marking it, without opening anything in between.)
        var heldBy: Listener?
        let entered = try table.wait(until: .never) { table throws(MacTCPError) -> (Ticket, Endpoint)? in
            if port != 0, table.entries[port]?.closing == true { return nil }
            let id = table.nextID
            table.nextID += 1
            let waiter = Waiter(id: id, stream: stream, remoteAddress: remoteAddress, remotePort: remotePort, listened: watched)
            if port != 0, let entry = table.entries[port] {
                if entry.parked {
                    try entry.listener.resume(armed: false)
                    entry.parked = false
                }
                entry.waiters.append(waiter)
                if held != port { entry.holders += 1 }
                entry.rearm()
                if !entry.held.isEmpty { heldBy = entry.listener }
                return (Ticket(port: port, id: id), entry.listener.endpoint)
            }
            let listener = try Listener.open(port: port, armed: waiter.watched)
            table.entries[listener.endpoint.port] = Entry(listener: listener, first: waiter, holders: 1)
            return (Ticket(port: listener.endpoint.port, id: id), listener.endpoint)
        }
        guard let entered else {
            throw MacTCPError.outOfMemory.with(operation: "passiveOpen", detail: "the listener table could not be entered")
        }
        if let held, held != entered.1.port { release(held) }
        // On the reactor's thread: the caller holds the stream's lock, which the hand-off takes.
        if let heldBy { Reactor.shared.schedule(after: .zero) { heldBy.handHeld() } }
        return entered
    }

    /// Keeps `port` listening (0: a port the system picks) with an accept queue of
    /// `backlog`, until ``unkeep(_:)``: the kept port of ``TCPListeningPort``. Returns the port.
    func keep(port: UInt16, backlog: Int32) throws(MacTCPError) -> UInt16 {
        let kept = try table.wait(until: .never) { table throws(MacTCPError) -> UInt16? in
            if port != 0, table.entries[port]?.closing == true { return nil }
            if port != 0, let entry = table.entries[port] {
                if entry.parked {
                    try entry.listener.resume(armed: false)
                    entry.parked = false
                }
                entry.kept += 1
                entry.holders += 1
                if entry.kept == 1 || backlog > entry.backlog {
                    entry.backlog = backlog
                    entry.listener.setBacklog(backlog)
                }
                entry.rearm()
                return port
            }
            let listener = try Listener.open(port: port, armed: false, backlog: backlog)
            let entry = Entry(listener: listener, first: nil, holders: 1)
            entry.kept = 1
            entry.backlog = backlog
            table.entries[listener.endpoint.port] = entry
            return listener.endpoint.port
        }
        guard let kept else {
            throw MacTCPError.outOfMemory.with(operation: "TCPListeningPort", detail: "the listener table could not be entered")
        }
        return kept
    }

    /// Ends one kept port on `port`. When none is left, the port follows MacTCP's rule again:
    /// with no stream waiting it stops listening (parked while a stream holds it, closed
    /// otherwise), which resets every client still in the kernel's queue, and the
    /// connections held for the next streams are reset too.
    func unkeep(_ port: UInt16) {
        let (closing, stranded) = table.withLock { table -> (Listener?, [(fd: Int32, peer: Endpoint)]) in
            guard let entry = table.entries[port], entry.kept > 0 else { return (nil, []) }
            entry.kept -= 1
            entry.holders -= 1
            guard entry.kept == 0 else { return (nil, []) }
            let stranded = entry.held
            entry.held = []
            entry.backlog = Listener.defaultBacklog
            if entry.waiters.isEmpty {
                return (entry.waiterLeft() ? entry.listener : nil, stranded)
            }
            entry.listener.setBacklog(Listener.defaultBacklog)
            entry.rearm()
            return (nil, stranded)
        }
        for connection in stranded { Listener.reset(connection.fd) }
        if let closing { close(closing) }
    }

    /// The oldest connection held for the next waiting stream, when a stream waits.
    func takeHeld(from listener: Listener) -> (fd: Int32, peer: Endpoint)? {
        table.withLock { table in
            guard let entry = table.entries[listener.endpoint.port], entry.listener === listener, !entry.waiters.isEmpty,
                !entry.held.isEmpty
            else { return nil }
            return entry.held.removeFirst()
        }
    }

    /// A stream that passive-opened on a port holds it until it is released or passive-opens
    /// on another port: meanwhile the port stays bound to this process even when no stream
    /// waits on it (the listener is parked: clients are refused, as MacTCP refused them, and
    /// no other user can bind the port). The last holder's release closes the listener.
    func release(_ port: UInt16) {
        let closing = table.withLock { table -> Listener? in
            guard let entry = table.entries[port], entry.holders > 0 else { return nil }
            entry.holders -= 1
            guard entry.holders == 0, entry.waiters.isEmpty, !entry.closing else { return nil }
            entry.closing = true
            return entry.listener
        }
        if let closing { close(closing) }
    }

    /// Removes a waiting stream; when nobody else waits, parks the listener (or closes it if
    /// no stream holds the port any more).
    func cancel(_ ticket: Ticket) {
        let closing = table.withLock { table -> Listener? in
            guard let entry = table.entries[ticket.port], !entry.closing else { return nil }
            entry.waiters.remove(id: ticket.id)
            return entry.waiterLeft() ? entry.listener : nil
        }
        if let closing { close(closing) }
    }

    /// Closes a listener whose entry is marked closing, then frees its port for new passive
    /// opens.
    private func close(_ listener: Listener) {
        listener.close()
        table.withLock { table in
            if table.entries[listener.endpoint.port]?.listener === listener {
                table.entries[listener.endpoint.port] = nil
            }
            self.table.broadcastWhileLocked()
        }
    }

    /// Marks a waiting stream as one whose completion must be noticed at once (it has an ASR
    /// or event sequence, or async calls) or not (a remote filter keeps it marked); arms or
    /// disarms the listener to match.
    func setWatched(_ ticket: Ticket, _ watched: Bool) {
        table.withLock { table in
            guard let entry = table.entries[ticket.port] else { return }
            entry.waiters.setWatched(id: ticket.id, watched)
            entry.rearm()
        }
    }

    /// Accepts the connections queued on the ticket's port, each given to the first waiting
    /// stream whose filter matches. Called by a thread that looks at a waiting stream.
    func settle(_ ticket: Ticket) {
        let listener = table.withLock { table -> Listener? in
            guard let entry = table.entries[ticket.port], !entry.closing, !entry.parked else { return nil }
            return entry.listener
        }
        listener?.drain(fromReactor: false, until: ticket.id)
    }

    /// The listener a thread about to sleep in `wait()` polls itself: the ticket's port's,
    /// while the reactor does not accept on it; nil otherwise.
    func pollableListener(_ ticket: Ticket) -> Listener? {
        table.withLock { table -> Listener? in
            guard let entry = table.entries[ticket.port], !entry.closing, !entry.parked, !entry.armed else { return nil }
            return entry.listener
        }
    }

    /// A thread asleep in `wait()` on the stream's lock: the listener stays armed meanwhile.
    struct Sleep {
        let ticket: Ticket
        fileprivate let entry: Entry
    }

    /// Arms the listener while a thread sleeps in `wait()`; nil if the port has no listener.
    /// End with ``endSleep(_:)``.
    func beginSleep(_ ticket: Ticket) -> Sleep? {
        table.withLock { table -> Sleep? in
            guard let entry = table.entries[ticket.port] else { return nil }
            entry.sleepers += 1
            entry.rearm()
            return Sleep(ticket: ticket, entry: entry)
        }
    }

    func endSleep(_ sleep: Sleep) {
        table.withLock { _ in
            sleep.entry.sleepers -= 1
            sleep.entry.rearm()
        }
    }

    /// Gives an accepted connection to the first waiting stream whose filter matches, or
    /// resets it. Returns false when the listener has no waiter left (and has been closed);
    /// `taken` is the ticket id of the stream that took it.
    func handOff(_ connection: (fd: Int32, peer: Endpoint), from listener: Listener, taken: inout UInt64?) -> Bool {
        while true {
            let (waiter, closing, remaining, kept) = table.withLock { table -> (Waiter?, Listener?, Bool, Bool) in
                let port = listener.endpoint.port
                guard let entry = table.entries[port], entry.listener === listener, !entry.parked else { return (nil, nil, false, false) }
                if entry.kept > 0 && entry.waiters.isEmpty {
                    // A kept port's client that no stream waits for (a passive open ended as
                    // it was accepted): held for the next stream, never reset.
                    entry.held.append(connection)
                    return (nil, nil, false, true)
                }
                guard let waiter = entry.waiters.removeFirst(where: { $0.accepts(connection.peer) }) else {
                    return (nil, nil, !entry.closing, false)
                }
                // The last waiter's listener is parked (or closed) before the stream learns of
                // its connection: once its wait returns, nothing listens on the port any more.
                // A kept port's stays listening, and what is queued waits for the next stream.
                let close = entry.waiterLeft()
                return (waiter, close ? entry.listener : nil, !entry.closing && !entry.parked && !entry.waiters.isEmpty, false)
            }
            if kept { return false }
            guard let waiter else {
                Listener.reset(connection.fd)
                return remaining
            }
            if let closing { close(closing) }
            let ticket = Ticket(port: listener.endpoint.port, id: waiter.id)
            let adopted = waiter.stream?.adopt(connection.fd, peer: connection.peer, ticket: ticket) ?? false
            if adopted {
                taken = waiter.id
                return remaining
            }
            // The stream was released meanwhile: the next waiter, or (none left) held by a kept
            // port, or reset.
        }
    }
}
