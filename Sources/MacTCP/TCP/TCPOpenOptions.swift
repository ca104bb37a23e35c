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

    /// Creates options; every argument has MacTCP's default.
    ///
    /// - Parameters:
    ///   - ulpTimeout: The ULP timeout (positive).
    ///   - ulpAction: What happens when it expires.
    ///   - typeOfService: IP type-of-service flags.
    ///   - precedence: IP precedence, 0…7.
    ///   - timeToLive: IP time to live; 0 for the system default.
    ///   - dontFragment: Whether to set Don't Fragment.
    public init(
        ulpTimeout: Duration = .seconds(120),
        ulpAction: ULPAction = .abort,
        typeOfService: TypeOfService = [],
        precedence: UInt8 = 0,
        timeToLive: UInt8 = 0,
        dontFragment: Bool = false
    ) {
        self.ulpTimeout = ulpTimeout
        self.ulpAction = ulpAction
        self.typeOfService = typeOfService
        self.precedence = precedence
        self.timeToLive = timeToLive
        self.dontFragment = dontFragment
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
