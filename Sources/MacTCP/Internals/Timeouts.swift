// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// Checks and converts the timeouts of MacTCP calls.
enum Timeouts {
    /// The longest timeout accepted: about 68 years, far beyond any use, and small enough that
    /// deadlines never overflow.
    static let maximumSeconds: Double = 2_147_483_647
    /// The same in attoseconds, a constant. (Comparing `Duration`s calls into the runtime;
    /// comparing their attoseconds is two compares of 64-bit words, and a constant needs no
    /// lazy initialisation checked on every call, as a `static let` made by a call would.)
    private static var maximumAttoseconds: Int128 { 2_147_483_647 * 1_000_000_000_000_000_000 }

    /// A negative `Duration` is rejected with `invalidLength`. (Inlined: every blocking call
    /// checks its timeout, and the call cost more than the check.)
    @inline(__always)
    static func validate(_ timeout: Duration, operation: String, argument: String = "timeout") throws(MacTCPError) {
        let attoseconds = timeout.attoseconds
        if attoseconds < 0 || attoseconds > maximumAttoseconds {
            throw MacTCPError.invalidLength.with(
                operation: operation,
                detail: "\(argument) must be zero (no limit) or positive and at most \(Int64(maximumSeconds)) seconds, not \(timeout)"
            )
        }
    }

    /// Converts `Double` seconds; negative, non-finite or too large values are rejected with
    /// `invalidLength`, naming the argument.
    static func duration(_ seconds: Double, operation: String, argument: String = "timeout") throws(MacTCPError) -> Duration {
        guard seconds.isFinite, seconds >= 0, seconds <= maximumSeconds else {
            throw MacTCPError.invalidLength.with(
                operation: operation,
                detail: "\(argument) must be a finite number of seconds from 0 (no limit) to \(Int64(maximumSeconds)), not \(seconds)"
            )
        }
        return .nanoseconds(Int64((seconds * 1e9).rounded(.up)))
    }
}

extension Duration {
    /// The duration in whole nanoseconds, rounded down: 0 when negative, `UInt64.max` when
    /// more than about 584 years.
    ///
    /// `components` (and so `Duration`'s own conversions) divides a 128-bit count of
    /// attoseconds by 10^18 in software on every call; here one division of the 128-bit
    /// count by 10^9 gives the nanoseconds, with a quotient that fits in 64 bits.
    var wholeNanoseconds: UInt64 {
        let attoseconds = self.attoseconds
        guard attoseconds > 0 else { return 0 }
        let magnitude = UInt128(bitPattern: attoseconds)
        let high = UInt64(truncatingIfNeeded: magnitude >> 64)
        guard high < 1_000_000_000 else { return .max }
        return UInt64(1_000_000_000).dividingFullWidth((high: high, low: UInt64(truncatingIfNeeded: magnitude))).quotient
    }
}
