// How the value types print: addresses as dotted quads, ICMP messages by name.

extension TCPStatus: CustomStringConvertible {
    /// The status on one line, addresses as dotted quads, for example
    /// `TCPStatus(established, 127.0.0.1:7000 ↔ 127.0.0.1:40312, sendWindow 65483, …)`.
    public var description: String {
        "TCPStatus(\(state), \(IPv4.string(localHost)):\(localPort) ↔ \(IPv4.string(remoteHost)):\(remotePort), "
            + "sendWindow \(sendWindow), rcvWindow \(rcvWindow), amtUnackedData \(amtUnackedData), "
            + "amtUnreadData \(amtUnreadData), srtt \(srtt) ms)"
    }
}

extension UDPDatagram: CustomStringConvertible {
    /// The datagram's size and sender, for example `UDPDatagram(5 bytes from 127.0.0.1:40312)`.
    public var description: String {
        "UDPDatagram(\(data.count) bytes from \(IPv4.string(remoteHost)):\(remotePort))"
    }
}

extension ICMPReport: CustomStringConvertible {
    /// The message by name, with its type and code, who sent it and what it is about, for
    /// example `port unreachable (type 3, code 3) from 127.0.0.1 about 127.0.0.1:5353,
    /// MacTCP portUnreach`.
    public var description: String {
        "\(ICMPReport.name(type: icmpType, code: icmpCode)) (type \(icmpType), code \(icmpCode)) "
            + "from \(IPv4.string(reportingHost)) about \(IPv4.string(remoteHost)):\(remotePort)"
            + (reportType.map { ", MacTCP \($0)" } ?? "")
            + (icmpType == 3 && icmpCode == 4 ? ", next-hop MTU \(optionalAddlInfo)" : "")
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
