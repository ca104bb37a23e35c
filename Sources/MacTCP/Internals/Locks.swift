// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// Internals: the building blocks every subsystem uses — locks, deadlines, timeout checks and
// received byte arrays. They call the C shim's futex lock and the clock, nothing else.

import CMacTCP

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// A value protected by a mutex, which threads can also wait on.
///
/// The mutex is the C layer's `mt_lock` (a futex lock: one atomic instruction each way
/// without contention, where a pthread mutex costs two calls into glibc of about 25
/// instructions each), not `Synchronization.Mutex`: the C layer is compiled with the
/// sanitizers like the rest of the library, so ThreadSanitizer sees its atomics' ordering and
/// can tell a race from a locked access, which it cannot for the standard library's mutex.
/// `mt_lock` carries its condition variable too (12 bytes in all), because blocking MacTCP
/// calls (`wait`, `close`, `send` with `waitForAck`) must sleep until the reactor or another
/// thread changes a stream's state, and `Synchronization.Mutex` has none. The value and the
/// mutex share one heap allocation (a `ManagedBuffer`: the value in the header, the mutex in
/// the tail), so a lock costs one allocation; a stream holds several.
///
/// `@unchecked Sendable`: every access to the value happens between `mt_lock_acquire` and
/// `mt_lock_release` of the mutex (`withLock`, `wait`), which lives at the stable address of
/// the buffer's tail for the buffer's life.
struct Lock<Value>: @unchecked Sendable {
    private let storage: LockedBuffer<Value>

    init(_ value: Value) {
        storage = LockedBuffer.make(value)
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try storage.withLock(body)
    }

    /// Runs `body` under the lock until it returns a result, sleeping between tries until the
    /// value changes (``broadcast()``), `recheck` passes (a safety net for conditions that are
    /// observed outside the lock) or the deadline passes; returns nil at the deadline.
    func wait<R, E: Error>(
        until deadline: Deadline,
        recheck: Duration? = nil,
        _ body: (inout Value) throws(E) -> R?
    ) throws(E) -> R? {
        try storage.withUnsafeMutablePointers { value, lock throws(E) -> R? in
            mt_lock_acquire(lock)
            defer { mt_lock_release(lock) }
            let recheckNanoseconds = recheck.map(\.wholeNanoseconds)
            while true {
                if let result = try body(&value.pointee) { return result }
                let now = Deadline.monotonicNow()
                if let end = deadline.end, now >= end { return nil }
                // The lock's clock is CLOCK_MONOTONIC, the deadline's too.
                var wake = deadline.end ?? 0
                if let recheckNanoseconds { wake = wake == 0 ? now &+ recheckNanoseconds : min(wake, now &+ recheckNanoseconds) }
                mt_lock_wait(lock, wake)
            }
        }
    }

    /// Wakes every thread sleeping in ``wait(until:recheck:_:)``; call only inside
    /// ``withLock(_:)`` (the caller holds the mutex).
    func broadcastWhileLocked() {
        storage.withUnsafeMutablePointerToElements { mt_lock_broadcast($0) }
    }

    /// Wakes one thread sleeping in ``wait(until:recheck:_:)``, after a change made under the
    /// lock that any one of the sleepers can act on. Called after the lock is released, so
    /// that the woken thread does not run straight into the held mutex; no wake-up is lost,
    /// because a sleeper checks and counts itself under the mutex.
    func signalOne() {
        storage.withUnsafeMutablePointerToElements { mt_lock_signal($0) }
    }

    /// Wakes every thread sleeping in ``wait(until:recheck:_:)``.
    func broadcast() {
        storage.withUnsafeMutablePointerToElements { mt_lock_broadcast($0) }
    }
}

/// The value and its `mt_lock` in one allocation: the storage of ``Lock``, and the base of an object that is its own lock (the event queue's
/// ``DeliveryMailbox``), which saves a stream an allocation.
///
/// Not `Sendable` (`ManagedBuffer` is explicitly not): it is shared between threads only
/// inside a wrapper that is `@unchecked Sendable` for the reason ``Lock`` gives.
class LockedBuffer<Value>: ManagedBuffer<Value, mt_lock> {
    /// A buffer of this class (or of the subclass it is called on) holding `value`.
    final class func make(_ value: Value) -> Self {
        let storage = unsafeDowncast(create(minimumCapacity: 1) { _ in value }, to: Self.self)
        storage.withUnsafeMutablePointerToElements { $0.initialize(to: mt_lock()) }
        return storage
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    final func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try withUnsafeMutablePointers { value, lock throws(E) -> R in
            mt_lock_acquire(lock)
            defer { mt_lock_release(lock) }
            return try body(&value.pointee)
        }
    }
}
