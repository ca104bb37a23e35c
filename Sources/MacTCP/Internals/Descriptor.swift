import Synchronization

/// A socket descriptor whose `close` waits for every thread using it.
///
/// A blocked `receive` sits in `poll` on the descriptor while another thread may abort or
/// release the stream. Closing the descriptor under it would let the kernel hand the same
/// number to a new socket, and the woken thread would then read someone else's data. So every
/// use of the number is bracketed by ``withDescriptor(_:)``, and ``retire()`` closes it only
/// when the last user has left (or at once when nobody uses it).
final class Descriptor: Sendable {
    private struct Lifetime {
        var users = 0
        var retired = false
    }

    /// The raw descriptor; only valid inside ``withDescriptor(_:)``.
    private let fd: Int32
    private let lifetime = Lock(Lifetime())

    init(_ fd: Int32) {
        self.fd = fd
    }

    /// Runs `body` with the raw descriptor, or returns nil if the descriptor has been retired.
    @inline(__always)
    func withDescriptor<R, E: Error>(_ body: (Int32) throws(E) -> R) throws(E) -> R? {
        let entered = lifetime.withLock { state -> Bool in
            guard !state.retired else { return false }
            state.users += 1
            return true
        }
        guard entered else { return nil }
        defer { leave() }
        return try body(fd)
    }

    private func leave() {
        let close = lifetime.withLock { state -> Bool in
            state.users -= 1
            return state.retired && state.users == 0
        }
        if close { Sys.close(fd) }
    }

    /// Marks the descriptor closed for new users and closes it once current users have left.
    /// Deregister it from the reactor first. Calling it twice is harmless.
    func retire() {
        let close = lifetime.withLock { state -> Bool in
            guard !state.retired else { return false }
            state.retired = true
            return state.users == 0
        }
        if close { Sys.close(fd) }
    }

    var isRetired: Bool { lifetime.withLock { $0.retired } }

    /// The raw number, for registration bookkeeping only (never for I/O).
    var number: Int32 { fd }
}
