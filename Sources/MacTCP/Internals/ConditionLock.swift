#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// A value protected by a mutex, with a condition variable for threads that wait for it to
/// change.
///
/// `Synchronization.Mutex` has no condition variable, and blocking MacTCP calls (`wait`,
/// `close`, `send` with `waitForAck`) must sleep until the reactor or another thread changes
/// the stream's state. This is a pthread mutex and a `CLOCK_MONOTONIC` condition variable.
/// The library uses it for all its locks, also where no thread waits: ThreadSanitizer sees
/// pthread mutexes on Linux but not `Synchronization.Mutex`, and the sanitizer runs must be
/// able to tell a race from a locked access.
///
/// `@unchecked Sendable`: every access to `value` happens between `pthread_mutex_lock` and
/// `pthread_mutex_unlock` of `mutex` (in `withLock` and `wait`), and the pthread objects live
/// at stable heap addresses allocated in `init` and freed in `deinit`.
final class ConditionLock<Value>: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    private var value: Value

    init(_ value: Value) {
        self.value = value
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(condition, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    @inline(__always)
    func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// Runs `body` under the lock until it returns a result, sleeping between tries until the
    /// value changes (``broadcast()``), `recheck` passes (a safety net for conditions that are
    /// observed outside the lock) or the deadline passes; returns nil at the deadline.
    func wait<R, E: Error>(
        until deadline: Deadline,
        recheck: Duration? = nil,
        _ body: (inout Value) throws(E) -> R?
    ) throws(E) -> R? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while true {
            if let result = try body(&value) { return result }
            if deadline.hasPassed { return nil }
            var sleep = deadline.remaining
            if let recheck, sleep.map({ $0 > recheck }) ?? true { sleep = recheck }
            guard let sleep else {
                pthread_cond_wait(condition, mutex)
                continue
            }
            var wake = timespec()
            clock_gettime(CLOCK_MONOTONIC, &wake)
            let (seconds, attoseconds) = sleep.components
            let nanoseconds = Int(wake.tv_nsec) + Int(attoseconds / 1_000_000_000)
            wake.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
            wake.tv_nsec = nanoseconds % 1_000_000_000
            pthread_cond_timedwait(condition, mutex, &wake)
        }
    }

    /// Wakes every thread sleeping in ``wait(until:recheck:_:)``; call only inside
    /// ``withLock(_:)`` (the caller holds the mutex).
    func broadcastWhileLocked() {
        pthread_cond_broadcast(condition)
    }

    /// Wakes every thread sleeping in ``wait(until:recheck:_:)``.
    func broadcast() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }
}

/// A point in time after which a blocking call gives up, or none (wait without limit).
struct Deadline: Sendable {
    let instant: ContinuousClock.Instant?

    /// A timeout of zero means "wait without limit", as in MacTCP.
    init(timeout: Duration) {
        instant = timeout == .zero ? nil : ContinuousClock.now.advanced(by: timeout)
    }

    static let never = Deadline(timeout: .zero)

    var hasPassed: Bool {
        guard let instant else { return false }
        return ContinuousClock.now >= instant
    }

    /// Time left, or nil when there is no limit.
    var remaining: Duration? {
        guard let instant else { return nil }
        return max(.zero, instant - ContinuousClock.now)
    }

    /// Time left as a poll() timeout: -1 without limit, rounded up to whole milliseconds.
    var pollMilliseconds: Int32 {
        guard let remaining else { return -1 }
        let (seconds, attoseconds) = remaining.components
        let milliseconds = seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
        return Int32(clamping: milliseconds)
    }
}
