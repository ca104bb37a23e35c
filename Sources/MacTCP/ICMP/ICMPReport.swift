// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// An ICMP error report: MacTCP's ICMPReport, with the raw type and code as well.
///
/// On UDP streams the kernel queues the ICMP message itself (`IP_RECVERR`), so every field
/// is exact.
public struct ICMPReport: Sendable, Equatable {
    /// The message type in MacTCP's numbering; nil for a type MacTCP has no number for.
    public var reportType: ICMPMessageType?
    /// The ICMP type on the wire (RFC 792), for example 3 (destination unreachable).
    public var icmpType: UInt8
    /// The ICMP code on the wire, for example 3 (port unreachable).
    public var icmpCode: UInt8
    /// The host that sent the ICMP message (a router, or the destination itself).
    public var reportingHost: UInt32
    /// The destination of the datagram the message is about.
    public var remoteHost: UInt32
    /// The destination port of the datagram the message is about.
    public var remotePort: UInt16
    /// The local port the datagram was sent from.
    public var localPort: UInt16
    /// Extra information: the next-hop MTU for "fragmentation needed", otherwise 0.
    public var optionalAddlInfo: Int
    /// The errno the kernel associates with the message (ECONNREFUSED for port unreachable…).
    public var errno: Int32
    /// Whether the message is ICMPv6 (RFC 4443's types and codes), about an IPv6 datagram.
    public var isICMPv6 = false
    /// The host that sent the message, of either family (``reportingHost`` is 0 for IPv6).
    public var reportingAddress: IPAddress = .v4(0)
    /// The destination of the datagram the message is about, of either family
    /// (``remoteHost`` is 0 for IPv6).
    public var remoteAddress: IPAddress = .v4(0)

    /// Creates a report.
    public init(
        reportType: ICMPMessageType?,
        icmpType: UInt8,
        icmpCode: UInt8,
        reportingHost: UInt32,
        remoteHost: UInt32,
        remotePort: UInt16,
        localPort: UInt16,
        optionalAddlInfo: Int,
        errno: Int32
    ) {
        self.reportType = reportType
        self.icmpType = icmpType
        self.icmpCode = icmpCode
        self.reportingHost = reportingHost
        self.remoteHost = remoteHost
        self.remotePort = remotePort
        self.localPort = localPort
        self.optionalAddlInfo = optionalAddlInfo
        self.errno = errno
        reportingAddress = .v4(reportingHost)
        remoteAddress = .v4(remoteHost)
    }
}

extension ICMPReport: CustomStringConvertible {
    /// The message by name, with its type and code, who sent it and what it is about, for
    /// example `port unreachable (type 3, code 3) from 127.0.0.1 about 127.0.0.1:5353,
    /// MacTCP portUnreach`.
    public var description: String {
        let about = Endpoint(remoteAddress, port: remotePort)
        if isICMPv6 {
            return "\(ICMPReport.nameV6(type: icmpType, code: icmpCode)) (ICMPv6 type \(icmpType), code \(icmpCode)) "
                + "from \(reportingAddress) about \(about)" + (reportType.map { ", MacTCP \($0)" } ?? "")
                + (icmpType == 2 ? ", MTU \(optionalAddlInfo)" : "")
        }
        return "\(ICMPReport.name(type: icmpType, code: icmpCode)) (type \(icmpType), code \(icmpCode)) "
            + "from \(reportingAddress) about \(about)"
            + (reportType.map { ", MacTCP \($0)" } ?? "")
            + (icmpType == 3 && icmpCode == 4 ? ", next-hop MTU \(optionalAddlInfo)" : "")
    }

    /// The name of an ICMPv6 error message (RFC 4443), for example `"port unreachable"` for
    /// type 1 code 4.
    ///
    /// - Parameters:
    ///   - type: The ICMPv6 type on the wire.
    ///   - code: The ICMPv6 code on the wire.
    /// - Returns: The message's name; `"ICMPv6 type T"` for a type without one.
    public static func nameV6(type: UInt8, code: UInt8) -> String {
        switch (type, code) {
        case (1, 0): return "no route to destination"
        case (1, 1): return "communication administratively prohibited"
        case (1, 2): return "beyond scope of source address"
        case (1, 3): return "address unreachable"
        case (1, 4): return "port unreachable"
        case (1, 5): return "source address failed ingress/egress policy"
        case (1, 6): return "reject route to destination"
        case (1, _): return "destination unreachable"
        case (2, _): return "packet too big"
        case (3, 0): return "hop limit exceeded in transit"
        case (3, 1): return "fragment reassembly time exceeded"
        case (3, _): return "time exceeded"
        case (4, _): return "parameter problem"
        default: return "ICMPv6 type \(type)"
        }
    }

    /// The name of an ICMP message (RFC 792, RFC 1122, RFC 1812), for example
    /// `"port unreachable"` for type 3 code 3.
    ///
    /// - Parameters:
    ///   - type: The ICMP type on the wire.
    ///   - code: The ICMP code on the wire.
    /// - Returns: The message's name; `"ICMP type T"` for a type without one.
    public static func name(type: UInt8, code: UInt8) -> String {
        switch (type, code) {
        case (3, 0): return "net unreachable"
        case (3, 1): return "host unreachable"
        case (3, 2): return "protocol unreachable"
        case (3, 3): return "port unreachable"
        case (3, 4): return "fragmentation needed"
        case (3, 5): return "source route failed"
        case (3, 6): return "destination network unknown"
        case (3, 7): return "destination host unknown"
        case (3, 8): return "source host isolated"
        case (3, 9): return "network administratively prohibited"
        case (3, 10): return "host administratively prohibited"
        case (3, 11): return "network unreachable for type of service"
        case (3, 12): return "host unreachable for type of service"
        case (3, 13): return "communication administratively prohibited"
        case (3, 14): return "host precedence violation"
        case (3, 15): return "precedence cutoff in effect"
        case (3, _): return "destination unreachable"
        case (4, _): return "source quench"
        case (5, _): return "redirect"
        case (11, 0): return "time to live exceeded in transit"
        case (11, 1): return "fragment reassembly time exceeded"
        case (11, _): return "time exceeded"
        case (12, 1): return "required option missing"
        case (12, _): return "parameter problem"
        default: return "ICMP type \(type)"
        }
    }
}
