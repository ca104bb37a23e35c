/// Checks and converts the timeouts of MacTCP calls.
enum Timeouts {
    /// The longest timeout accepted: about 68 years, far beyond any use, and small enough that
    /// deadlines never overflow.
    static let maximumSeconds: Double = 2_147_483_647
    /// The same as a `Duration`, made once (making one costs a 128-bit multiplication).
    private static let maximum = Duration.seconds(Int64(maximumSeconds))

    /// A negative `Duration` is rejected with `invalidLength`.
    static func validate(_ timeout: Duration, operation: String, argument: String = "timeout") throws(MacTCPError) {
        if timeout < .zero || timeout > maximum {
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
