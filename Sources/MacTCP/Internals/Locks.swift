#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// A value protected by a pthread mutex.
///
/// The library's locks are pthread mutexes, not `Synchronization.Mutex`: ThreadSanitizer
/// sees pthread mutexes on Linux but not `Synchronization.Mutex`, and the sanitizer runs must
/// be able to tell a race from a locked access. The value and the mutex share one heap
/// allocation (a `ManagedBuffer`: the value in the header, the mutex in the tail), so a lock
/// costs one allocation; a stream holds several.
///
/// `@unchecked Sendable`: every access to the value happens between `pthread_mutex_lock` and
/// `pthread_mutex_unlock` of the mutex, which lives at the stable address of the buffer's
/// tail from `init` until the buffer's `deinit`.
struct Lock<Value>: @unchecked Sendable {
    private final class Storage: ManagedBuffer<Value, pthread_mutex_t> {
        deinit {
            _ = withUnsafeMutablePointerToElements { pthread_mutex_destroy($0) }
        }
    }

    private let storage: Storage

    init(_ value: Value) {
        storage = unsafeDowncast(Storage.create(minimumCapacity: 1) { _ in value }, to: Storage.self)
        _ = storage.withUnsafeMutablePointerToElements { pthread_mutex_init($0, nil) }
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try storage.withUnsafeMutablePointers { value, mutex throws(E) -> R in
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return try body(&value.pointee)
        }
    }
}

/// A ``Lock`` with a condition variable, for values that threads wait on.
///
/// `Synchronization.Mutex` has no condition variable, and blocking MacTCP calls (`wait`,
/// `close`, `send` with `waitForAck`) must sleep until the reactor or another thread changes
/// the stream's state. This is a pthread mutex and a `CLOCK_MONOTONIC` condition variable,
/// both in the tail of the value's buffer (one allocation).
///
/// `@unchecked Sendable`: as ``Lock``; the value is touched only with the mutex held
/// (`withLock`, `wait`), and the condition variable is used only with it held.
struct ConditionLock<Value>: @unchecked Sendable {
    private struct Primitives {
        var mutex = pthread_mutex_t()
        var condition = pthread_cond_t()
    }

    private final class Storage: ManagedBuffer<Value, Primitives> {
        deinit {
            withUnsafeMutablePointerToElements { primitives in
                pthread_cond_destroy(ConditionLock.condition(primitives))
                pthread_mutex_destroy(ConditionLock.mutex(primitives))
            }
        }
    }

    private let storage: Storage

    private static func mutex(_ primitives: UnsafeMutablePointer<Primitives>) -> UnsafeMutablePointer<pthread_mutex_t> {
        UnsafeMutableRawPointer(primitives).assumingMemoryBound(to: pthread_mutex_t.self)
    }

    private static func condition(_ primitives: UnsafeMutablePointer<Primitives>) -> UnsafeMutablePointer<pthread_cond_t> {
        (UnsafeMutableRawPointer(primitives) + MemoryLayout<Primitives>.offset(of: \.condition)!)
            .assumingMemoryBound(to: pthread_cond_t.self)
    }

    init(_ value: Value) {
        storage = unsafeDowncast(Storage.create(minimumCapacity: 1) { _ in value }, to: Storage.self)
        storage.withUnsafeMutablePointerToElements { primitives in
            primitives.initialize(to: Primitives())
            pthread_mutex_init(Self.mutex(primitives), nil)
            var attributes = pthread_condattr_t()
            pthread_condattr_init(&attributes)
            pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
            pthread_cond_init(Self.condition(primitives), &attributes)
            pthread_condattr_destroy(&attributes)
        }
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        try storage.withUnsafeMutablePointers { value, primitives throws(E) -> R in
            let mutex = Self.mutex(primitives)
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            return try body(&value.pointee)
        }
    }

    /// Runs `body` under the lock until it returns a result, sleeping between tries until the
    /// value changes (``broadcast()``), `recheck` passes (a safety net for conditions that are
    /// observed outside the lock) or the deadline passes; returns nil at the deadline.
    func wait<R, E: Error>(
        until deadline: Deadline,
        recheck: Duration? = nil,
        _ body: (inout Value) throws(E) -> R?
    ) throws(E) -> R? {
        try storage.withUnsafeMutablePointers { value, primitives throws(E) -> R? in
            let mutex = Self.mutex(primitives)
            let condition = Self.condition(primitives)
            pthread_mutex_lock(mutex)
            defer { pthread_mutex_unlock(mutex) }
            let recheckNanoseconds = recheck.map(\.wholeNanoseconds)
            while true {
                if let result = try body(&value.pointee) { return result }
                let now = Deadline.monotonicNow()
                if let end = deadline.end, now >= end { return nil }
                // The condition variable's clock is CLOCK_MONOTONIC, the deadline's too.
                var wake = deadline.end ?? .max
                if let recheckNanoseconds { wake = min(wake, now &+ recheckNanoseconds) }
                guard wake != .max else {
                    pthread_cond_wait(condition, mutex)
                    continue
                }
                var time = timespec(tv_sec: Int(wake / 1_000_000_000), tv_nsec: Int(wake % 1_000_000_000))
                pthread_cond_timedwait(condition, mutex, &time)
            }
        }
    }

    /// Wakes every thread sleeping in ``wait(until:recheck:_:)``; call only inside
    /// ``withLock(_:)`` (the caller holds the mutex).
    func broadcastWhileLocked() {
        _ = storage.withUnsafeMutablePointerToElements { pthread_cond_broadcast(Self.condition($0)) }
    }

    /// Wakes one thread sleeping in ``wait(until:recheck:_:)``, after a change made under the
    /// lock that any one of the sleepers can act on. Called after the lock is released, so
    /// that the woken thread does not run straight into the held mutex; no wake-up is lost,
    /// because a sleeper checks and starts to sleep under the mutex.
    func signalOne() {
        _ = storage.withUnsafeMutablePointerToElements { pthread_cond_signal(Self.condition($0)) }
    }

    /// Wakes every thread sleeping in ``wait(until:recheck:_:)``.
    func broadcast() {
        storage.withUnsafeMutablePointerToElements { primitives in
            pthread_mutex_lock(Self.mutex(primitives))
            pthread_cond_broadcast(Self.condition(primitives))
            pthread_mutex_unlock(Self.mutex(primitives))
        }
    }
}

/// A point in time after which a blocking call gives up, or none (wait without limit).
///
/// Kept as nanoseconds of `CLOCK_MONOTONIC` (the clock of the library's condition variables):
/// every blocking call makes one and asks it for its `poll` timeout, and `Duration`'s
/// 128-bit arithmetic cost hundreds of instructions each time.
struct Deadline: Sendable {
    /// `CLOCK_MONOTONIC` nanoseconds; nil for no limit.
    let end: UInt64?

    /// A timeout of zero means "wait without limit", as in MacTCP.
    init(timeout: Duration) {
        end = timeout.attoseconds == 0 ? nil : Self.monotonicNow() &+ timeout.wholeNanoseconds
    }

    /// A deadline `milliseconds` from now, made with integer arithmetic only (for the fixed
    /// waits of the hot paths).
    init(milliseconds: UInt64) {
        end = Self.monotonicNow() &+ milliseconds &* 1_000_000
    }

    static let never = Deadline(timeout: .zero)

    /// Now on `CLOCK_MONOTONIC`, in nanoseconds.
    static func monotonicNow() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    var hasPassed: Bool {
        guard let end else { return false }
        return Self.monotonicNow() >= end
    }

    /// Time left, or nil when there is no limit.
    var remaining: Duration? {
        guard let end else { return nil }
        let now = Self.monotonicNow()
        return .nanoseconds(Int64(clamping: end > now ? end - now : 0))
    }

    /// Time left as a poll() timeout: -1 without limit, rounded up to whole milliseconds.
    var pollMilliseconds: Int32 {
        guard let end else { return -1 }
        let now = Self.monotonicNow()
        let left = end > now ? end - now : 0
        return Int32(clamping: (left + 999_999) / 1_000_000)
    }
}
