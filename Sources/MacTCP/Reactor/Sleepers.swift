// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// How a blocked call sleeps in the kernel on a socket by itself, without the reactor.
///
/// A thread in `wait()` polls the listener and a ``Waker`` (an eventfd recorded in the
/// stream's state, which every change of the stream signals: a hand-off by another thread,
/// an abort, a timeout). A thread in `close()` waits on a ``StateWatch`` of its socket: every
/// change that can end its wait (the acknowledgement, the peer's FIN, a reset, an abort)
/// happens on that socket. Both are made for one sleep and closed after it, so a thread keeps
/// no descriptor of its own between calls.

/// An eventfd that wakes one sleeping thread.
struct Waker: Sendable {
    /// The sleeping thread (a change it makes itself needs no signal).
    let thread: pthread_t
    let fd: Int32

    /// A waker for the calling thread, or nil if the kernel refuses a descriptor (the caller
    /// then sleeps another way).
    static func make() -> Waker? {
        let fd = Sys.eventFD()
        return fd < 0 ? nil : Waker(thread: pthread_self(), fd: fd)
    }

    /// Wakes the sleeping thread, unless the caller is that thread.
    func signal() {
        if pthread_equal(thread, pthread_self()) == 0 { Sys.signalEvent(fd) }
    }

    func close() { Sys.close(fd) }
}

/// An epoll instance watching one socket's wake-ups (edge-triggered `EPOLLOUT`: every state
/// change of a socket that can write, as the reactor's `stateChanges`).
struct StateWatch {
    private let epoll: Int32

    /// Watches `socket`; nil if the kernel refuses. The first ``sleep(milliseconds:)``
    /// returns at once (the socket's current state counts as a change).
    init?(_ socket: Int32, events: UInt32) {
        epoll = Sys.epollCreate()
        guard epoll >= 0 else { return nil }
        guard Sys.epollControl(epoll, .add, socket, events: events | EpollEvents.edgeTriggered) >= 0 else {
            Sys.close(epoll)
            return nil
        }
    }

    /// Sleeps until the socket reports or `milliseconds` pass; returns its events (0: none).
    func sleep(milliseconds: Int32) -> UInt32 {
        var events: UInt32 = 0
        var tag: UInt64 = 0
        return Sys.epollWait(epoll, events: &events, tags: &tag, capacity: 1, milliseconds: milliseconds) == 1 ? events : 0
    }

    func close() { Sys.close(epoll) }
}
