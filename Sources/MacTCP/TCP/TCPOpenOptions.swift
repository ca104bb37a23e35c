// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// What a stream does when the ULP timer expires.
public enum ULPAction: Int, Sendable {
    /// Deliver ``TCPEvent/ulpTimeout`` each period and keep trying. MacTCP's action 0.
    case report = 0
    /// Break the connection: ``TCPEvent/terminate`` with ``TCPTerminationReason/ulpTimeout``,
    /// pending calls fail with ``MacTCPError/connectionTerminated``. MacTCP's default.
    case abort = 1
}

/// IP type-of-service flags of a connection.
public struct TypeOfService: OptionSet, Sendable, Hashable {
    public let rawValue: UInt8
    /// Creates the flags from MacTCP's bits (bit 0 low delay, bit 1 throughput, bit 2 reliability).
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    /// Minimise delay (IP TOS 0x10).
    public static let lowDelay = TypeOfService(rawValue: 1)
    /// Maximise throughput (IP TOS 0x08).
    public static let throughput = TypeOfService(rawValue: 2)
    /// Maximise reliability (IP TOS 0x04).
    public static let reliability = TypeOfService(rawValue: 4)

    /// The TOS byte of the IP header, with the precedence in its top three bits.
    func ipTOS(precedence: UInt8) -> Int32 {
        var tos = Int32(precedence & 7) << 5
        if contains(.lowDelay) { tos |= 0x10 }
        if contains(.throughput) { tos |= 0x08 }
        if contains(.reliability) { tos |= 0x04 }
        return tos
    }
}

/// Settings that apply to one connection, given to `passiveOpen` or `activeOpen`.
///
/// They correspond to the optional fields of MacTCP's TCPPassiveOpen and TCPActiveOpen
/// parameter blocks. The IP header settings are fixed for the life of the connection.
public struct TCPOpenOptions: Sendable {
    /// How long sent data (or the SYN or FIN) may stay unacknowledged before ``ulpAction``
    /// applies. Default 2 minutes, MacTCP's default.
    public var ulpTimeout: Duration
    /// What happens when the ULP timer expires. Default ``ULPAction/abort``.
    public var ulpAction: ULPAction
    /// IP type-of-service flags. Default none.
    public var typeOfService: TypeOfService
    /// IP precedence, 0 (routine) … 7 (network control). Default 0.
    public var precedence: UInt8
    /// IP time to live; 0 keeps the system default.
    public var timeToLive: UInt8
    /// Sets Don't Fragment on every segment (and so path-MTU discovery).
    public var dontFragment: Bool
    /// TCP keepalive probes on an idle connection, so that a peer that vanished (its host
    /// down, its link gone) ends the connection instead of holding it for ever; nil (the
    /// default, as MacTCP had none) sends none. See ``TCPKeepalive``.
    public var keepalive: TCPKeepalive?

    /// Creates options; every argument has MacTCP's default.
    ///
    /// - Parameters:
    ///   - ulpTimeout: The ULP timeout (positive).
    ///   - ulpAction: What happens when it expires.
    ///   - typeOfService: IP type-of-service flags.
    ///   - precedence: IP precedence, 0…7.
    ///   - timeToLive: IP time to live; 0 for the system default.
    ///   - dontFragment: Whether to set Don't Fragment.
    ///   - keepalive: Keepalive probes on an idle connection; nil for none.
    public init(
        ulpTimeout: Duration = .seconds(120),
        ulpAction: ULPAction = .abort,
        typeOfService: TypeOfService = [],
        precedence: UInt8 = 0,
        timeToLive: UInt8 = 0,
        dontFragment: Bool = false,
        keepalive: TCPKeepalive? = nil
    ) {
        self.ulpTimeout = ulpTimeout
        self.ulpAction = ulpAction
        self.typeOfService = typeOfService
        self.precedence = precedence
        self.timeToLive = timeToLive
        self.dontFragment = dontFragment
        self.keepalive = keepalive
    }

    /// Checks the ranges; throws ``MacTCPError/invalidLength`` naming the bad field.
    func validate(operation: String) throws(MacTCPError) {
        let attoseconds = ulpTimeout.attoseconds
        if attoseconds <= 0 || attoseconds > Self.maximumULPAttoseconds {
            throw MacTCPError.invalidLength.with(
                operation: operation,
                detail: "options.ulpTimeout must be positive and at most 2147483 seconds, not \(ulpTimeout)"
            )
        }
        try keepalive?.validate(operation: operation)
        if precedence > 7 {
            throw MacTCPError.invalidLength.with(
                operation: operation,
                detail: "options.precedence must be 0…7, not \(precedence)"
            )
        }
    }

    /// The longest ULP timeout, 2,147,483 s (`TCP_USER_TIMEOUT` counts milliseconds in 32
    /// bits), in attoseconds (a constant: no lazy initialisation to check).
    private static var maximumULPAttoseconds: Int128 { 2_147_483 * 1_000_000_000_000_000_000 }

    /// The ULP timeout in whole milliseconds (at least 1).
    var ulpMilliseconds: Int32 {
        Int32(clamping: max(1, ulpTimeout.wholeNanoseconds / 1_000_000))
    }
}

/// TCP keepalive: after ``idle`` without a segment from the peer, a probe every ``interval``;
/// after ``count`` probes without an answer the connection ends with
/// ``TCPTerminationReason/networkFailure`` (a blocked call gets
/// ``MacTCPError/connectionTerminated``).
///
/// With ``ULPAction/abort`` the ULP timeout bounds the probing instead of the count (Linux's
/// `TCP_USER_TIMEOUT` governs keepalive too): the connection ends once a probe is out and the
/// peer has not been heard from for the ULP timeout, as ``TCPTerminationReason/ulpTimeout``.
/// The kernel counts in whole seconds: each duration is rounded up to one.
///
/// MacTCP had no keepalive; this is the Linux mechanism (`SO_KEEPALIVE`, `TCP_KEEPIDLE`,
/// `TCP_KEEPINTVL`, `TCP_KEEPCNT`).
public struct TCPKeepalive: Sendable, Equatable {
    /// How long the connection may be idle before the first probe, 1 s … 32,767 s.
    public var idle: Duration
    /// The time between probes, 1 s … 32,767 s.
    public var interval: Duration
    /// Unanswered probes before the connection ends, 1 … 127.
    public var count: Int

    /// Creates keepalive settings.
    ///
    /// - Parameters:
    ///   - idle: Idle time before the first probe (default 60 s).
    ///   - interval: Time between probes (default 10 s).
    ///   - count: Unanswered probes that end the connection (default 6).
    public init(idle: Duration = .seconds(60), interval: Duration = .seconds(10), count: Int = 6) {
        self.idle = idle
        self.interval = interval
        self.count = count
    }

    private static let longest: Int64 = 32_767

    /// The duration in whole seconds, rounded up.
    static func seconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds + (attoseconds > 0 ? 1 : 0)
    }

    func validate(operation: String) throws(MacTCPError) {
        for (name, value) in [("idle", idle), ("interval", interval)] {
            let seconds = Self.seconds(value)
            if value <= .zero || seconds > Self.longest {
                throw MacTCPError.invalidLength.with(
                    operation: operation,
                    detail: "options.keepalive.\(name) must be more than 0 and at most \(Self.longest) seconds, not \(value)")
            }
        }
        if !(1...127).contains(count) {
            throw MacTCPError.invalidLength.with(
                operation: operation, detail: "options.keepalive.count must be 1…127, not \(count)")
        }
    }
}
