// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// A point in time after which a blocking call gives up, or none (wait without limit).
///
/// Kept as nanoseconds of `CLOCK_MONOTONIC` (the clock of the library's condition variables):
/// every blocking call makes one and asks it for its `poll` timeout, and `Duration`'s
/// 128-bit arithmetic cost hundreds of instructions each time.
struct Deadline: Sendable {
    /// `CLOCK_MONOTONIC` nanoseconds; nil for no limit.
    let end: UInt64?

    /// A timeout of zero means "wait without limit", as in MacTCP.
    @inline(__always)
    init(timeout: Duration) {
        end = timeout.attoseconds == 0 ? nil : Self.monotonicNow() &+ timeout.wholeNanoseconds
    }

    /// A deadline `milliseconds` from now, made with integer arithmetic only (for the fixed
    /// waits of the hot paths).
    init(milliseconds: UInt64) {
        end = Self.monotonicNow() &+ milliseconds &* 1_000_000
    }

    static let never = Deadline(timeout: .zero)

    private init(end: UInt64?) {
        self.end = end
    }

    /// The earlier of two deadlines (no limit is the latest).
    static func earlier(_ first: Deadline, _ second: Deadline) -> Deadline {
        guard let a = first.end else { return second }
        guard let b = second.end else { return first }
        return Deadline(end: min(a, b))
    }

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
