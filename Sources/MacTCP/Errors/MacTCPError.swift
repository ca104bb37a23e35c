// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// Errors: `MacTCPError`, MacTCP's result codes and the one error type of the library. It calls
// nothing; every subsystem throws it.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// An error reported by a MacTCP call, carrying MacTCP's result code.
///
/// Every failure of the library is a `MacTCPError`. Its ``code`` is the result code MacTCP
/// returned for the same condition (`connectionClosing` is -23005, and so on); the static
/// members name every code as Apple named it. Two errors are equal when their codes are equal,
/// so you can match a specific code:
///
/// ```swift
/// do {
///     let result = try stream.receive(timeout: .seconds(5))
///     print(result.data.count)
/// } catch MacTCPError.connectionClosing {
///     print("the peer has closed and everything was read")  // → the peer has closed and everything was read
/// }
/// ```
///
/// The ``description`` names the code by name and number, the operation that failed and, when
/// a system call failed, the text of its `errno`.
public struct MacTCPError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The MacTCP result code, for example -23005 for ``connectionClosing``.
    public let code: Int
    /// The operation that failed, for example `"receive"`; empty for the static members.
    public let operation: String
    /// The system error number behind the failure, where a system call failed.
    public let errno: Int32?
    /// A sentence explaining this occurrence, where there is more to say than the code.
    public let detail: String?
    /// The ICMP (or ICMPv6) type and code of the message behind the failure, where one came
    /// (an ICMP echo answered by an error); nil otherwise.
    public internal(set) var icmp: ICMPTypeAndCode?

    /// Creates an error with a MacTCP result code.
    ///
    /// - Parameters:
    ///   - code: The MacTCP result code.
    ///   - operation: The operation that failed.
    ///   - errno: The system error number, if a system call failed.
    ///   - detail: A sentence explaining this occurrence.
    public init(code: Int, operation: String = "", errno: Int32? = nil, detail: String? = nil) {
        self.code = code
        self.operation = operation
        self.errno = errno
        self.detail = detail
    }

    /// Two errors are equal when their MacTCP codes are equal.
    public static func == (lhs: MacTCPError, rhs: MacTCPError) -> Bool {
        lhs.code == rhs.code
    }

    /// Matches any error that is a `MacTCPError` with the same code, so that
    /// `catch MacTCPError.commandTimeout` works.
    public static func ~= (pattern: MacTCPError, value: any Error) -> Bool {
        (value as? MacTCPError)?.code == pattern.code
    }

    /// Apple's name for the code, such as `"connectionClosing"`, or `"unknown"`.
    public var name: String {
        Self.catalog[code]?.name ?? "unknown"
    }

    /// What the code means, in a few words.
    public var meaning: String {
        Self.catalog[code]?.meaning ?? "unknown MacTCP result code"
    }

    /// The code by name and number, the operation, the explanation and the errno's text:
    /// `connectionClosing (-23005) in receive: the peer has closed ...`.
    public var description: String {
        var text = "\(name) (\(code))"
        if !operation.isEmpty { text += " in \(operation)" }
        text += ": " + (detail ?? meaning)
        if let errno {
            text += " [errno \(errno): \(String(cString: strerror(errno)))]"
        }
        return text
    }

    /// Returns this error with the operation, errno and detail of one occurrence.
    func with(operation: String, errno: Int32? = nil, detail: String? = nil) -> MacTCPError {
        var error = MacTCPError(code: code, operation: operation, errno: errno ?? self.errno, detail: detail ?? self.detail)
        error.icmp = icmp
        return error
    }
}

extension MacTCPError {
    /// The local network handler could not be initialised (-23000).
    public static let ipBadLapErr = MacTCPError(code: -23000)
    /// The manually set address is configured improperly (-23001).
    public static let ipBadCnfgErr = MacTCPError(code: -23001)
    /// The configuration resource is missing (-23002).
    public static let ipNoCnfgErr = MacTCPError(code: -23002)
    /// Not enough room in the application heap (-23003).
    public static let ipLoadErr = MacTCPError(code: -23003)
    /// A bad address: a host or port that cannot be used (-23004).
    public static let ipBadAddr = MacTCPError(code: -23004)
    /// The connection is closing: close was already called, or the peer has closed and every
    /// byte has been read (-23005).
    public static let connectionClosing = MacTCPError(code: -23005)
    /// A length, size or timeout argument is out of range (-23006).
    public static let invalidLength = MacTCPError(code: -23006)
    /// The stream already has a connection or a pending open (-23007).
    public static let connectionExists = MacTCPError(code: -23007)
    /// The stream has no connection (-23008).
    public static let connectionDoesntExist = MacTCPError(code: -23008)
    /// The system ran out of a resource, such as descriptors (-23009).
    public static let insufficientResources = MacTCPError(code: -23009)
    /// The stream has been released (-23010).
    public static let invalidStreamPtr = MacTCPError(code: -23010)
    /// The stream is already open (-23011).
    public static let streamAlreadyOpen = MacTCPError(code: -23011)
    /// The connection was broken; the terminate event gives the reason (-23012).
    public static let connectionTerminated = MacTCPError(code: -23012)
    /// A bad buffer (-23013).
    public static let invalidBufPtr = MacTCPError(code: -23013)
    /// A bad receive descriptor structure (-23014).
    public static let invalidRDS = MacTCPError(code: -23014)
    /// A bad write descriptor structure (-23014, the same value as ``invalidRDS``).
    public static let invalidWDS = MacTCPError(code: -23014)
    /// The connection could not be opened (-23015).
    public static let openFailed = MacTCPError(code: -23015)
    /// The command did not complete within its timeout (-23016).
    public static let commandTimeout = MacTCPError(code: -23016)
    /// The local port is already in use (-23017).
    public static let duplicateSocket = MacTCPError(code: -23017)
    /// The packet is too large to send with Don't Fragment set (-23032).
    public static let ipDontFragErr = MacTCPError(code: -23032)
    /// The destination does not respond to address resolution (-23033).
    public static let ipDestDeadErr = MacTCPError(code: -23033)
    /// No reply to an ICMP echo in time (-23035).
    public static let icmpEchoTimeoutErr = MacTCPError(code: -23035)
    /// No buffers to fragment the packet (-23036).
    public static let ipNoFragMemErr = MacTCPError(code: -23036)
    /// No route to the destination (-23037).
    public static let ipRouteErr = MacTCPError(code: -23037)
    /// A malformed host name or address (-23041).
    public static let nameSyntaxErr = MacTCPError(code: -23041)
    /// The name is not in the cache; the answer comes later (-23042).
    public static let cacheFault = MacTCPError(code: -23042)
    /// The resolver needed a result procedure and none was given (-23043).
    public static let noResultProc = MacTCPError(code: -23043)
    /// No name server is known for this name (-23044).
    public static let noNameServer = MacTCPError(code: -23044)
    /// The domain name does not exist (-23045).
    public static let authNameErr = MacTCPError(code: -23045)
    /// No known name server answers (-23046).
    public static let noAnsErr = MacTCPError(code: -23046)
    /// The name server returned an error (-23047).
    public static let dnrErr = MacTCPError(code: -23047)
    /// Not enough memory for the query (-23048).
    public static let outOfMemory = MacTCPError(code: -23048)
    /// The resolver is not open: it was closed, and its pending queries ended (Mac OS's -28,
    /// "driver not open").
    public static let notOpenErr = MacTCPError(code: -28)

    private static let catalog: [Int: (name: String, meaning: String)] = [
        -23000: ("ipBadLapErr", "the local network handler could not be initialised"),
        -23001: ("ipBadCnfgErr", "the manually set address is configured improperly"),
        -23002: ("ipNoCnfgErr", "the network configuration is missing"),
        -23003: ("ipLoadErr", "not enough memory to load the network driver"),
        -23004: ("ipBadAddr", "the address cannot be used"),
        -23005: ("connectionClosing", "the connection is closing"),
        -23006: ("invalidLength", "a length, size or timeout is out of range"),
        -23007: ("connectionExists", "the stream already has a connection or a pending open"),
        -23008: ("connectionDoesntExist", "the stream has no connection"),
        -23009: ("insufficientResources", "the system ran out of resources"),
        -23010: ("invalidStreamPtr", "the stream has been released"),
        -23011: ("streamAlreadyOpen", "the stream is already open"),
        -23012: ("connectionTerminated", "the connection was broken"),
        -23013: ("invalidBufPtr", "the buffer is not valid"),
        -23014: ("invalidRDS", "the receive or write descriptor structure is not valid"),
        -23015: ("openFailed", "the connection could not be opened"),
        -23016: ("commandTimeout", "the command did not complete in time"),
        -23017: ("duplicateSocket", "the local port is already in use"),
        -23032: ("ipDontFragErr", "the packet is too large to send without fragmenting"),
        -23033: ("ipDestDeadErr", "the destination does not respond"),
        -23035: ("icmpEchoTimeoutErr", "no reply to the ICMP echo in time"),
        -23036: ("ipNoFragMemErr", "no buffers to fragment the packet"),
        -23037: ("ipRouteErr", "no route to the destination"),
        -23041: ("nameSyntaxErr", "the host name or address is malformed"),
        -23042: ("cacheFault", "the name is not in the cache; the answer comes later"),
        -23043: ("noResultProc", "no result procedure was given"),
        -23044: ("noNameServer", "no name server is known for this name"),
        -23045: ("authNameErr", "the domain name does not exist"),
        -23046: ("noAnsErr", "no name server answers"),
        -23047: ("dnrErr", "the name server returned an error"),
        -23048: ("outOfMemory", "not enough memory"),
        -28: ("notOpenErr", "the resolver is not open"),
    ]
}

/// An ICMP message's type and code as they were on the wire, and whether it was ICMPv6
/// (RFC 4443's numbering) or ICMP (RFC 792's).
public struct ICMPTypeAndCode: Sendable, Equatable, CustomStringConvertible {
    /// The type on the wire.
    public var type: UInt8
    /// The code on the wire.
    public var code: UInt8
    /// Whether the message was ICMPv6.
    public var isICMPv6: Bool

    /// Creates a type and code.
    public init(type: UInt8, code: UInt8, isICMPv6: Bool) {
        self.type = type
        self.code = code
        self.isICMPv6 = isICMPv6
    }

    /// The message's name with its numbers, for example `time to live exceeded in transit
    /// (type 11, code 0)`.
    public var description: String {
        isICMPv6
            ? "\(ICMPReport.nameV6(type: type, code: code)) (ICMPv6 type \(type), code \(code))"
            : "\(ICMPReport.name(type: type, code: code)) (type \(type), code \(code))"
    }
}
