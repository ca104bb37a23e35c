// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Synchronization

/// A socket descriptor whose `close` waits for every thread using it.
///
/// A blocked `receive` sits in `poll` on the descriptor while another thread may abort or
/// release the stream. Closing the descriptor under it would let the kernel hand the same
/// number to a new socket, and the woken thread would then read someone else's data. So every
/// use of the number is bracketed by ``withDescriptor(_:)``, and ``retire()`` closes it only
/// when the last user has left (or at once when nobody uses it).
final class Descriptor: Sendable {
    /// The raw descriptor; only valid inside ``withDescriptor(_:)``.
    private let fd: Int32
    /// Twice the number of users, plus 1 once retired. An atomic, not a lock: every system
    /// call of the library enters and leaves here.
    private let lifetime = Atomic<Int>(0)

    init(_ fd: Int32) {
        self.fd = fd
    }

    /// Runs `body` with the raw descriptor, or returns nil if the descriptor has been retired.
    @inline(__always)
    func withDescriptor<R, E: Error>(_ body: (Int32) throws(E) -> R) throws(E) -> R? {
        var current = lifetime.load(ordering: .relaxed)
        while true {
            if current & 1 != 0 { return nil }
            let (exchanged, original) = lifetime.weakCompareExchange(
                expected: current, desired: current + 2, successOrdering: .acquiring, failureOrdering: .relaxed
            )
            if exchanged { break }
            current = original
        }
        defer { leave() }
        return try body(fd)
    }

    private func leave() {
        // The last user of a retired descriptor closes it.
        if lifetime.subtract(2, ordering: .acquiringAndReleasing).newValue == 1 { Sys.close(fd) }
    }

    /// Marks the descriptor closed for new users and closes it once current users have left.
    /// Deregister it from the reactor first. Calling it twice is harmless.
    func retire() {
        // Closed here only if it was not retired before and nobody uses it.
        if lifetime.bitwiseOr(1, ordering: .acquiringAndReleasing).oldValue == 0 { Sys.close(fd) }
    }

    var isRetired: Bool { lifetime.load(ordering: .acquiring) & 1 != 0 }

    /// The raw number, for registration bookkeeping only (never for I/O).
    var number: Int32 { fd }
}
