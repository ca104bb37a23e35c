// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The ICMP subsystem: what an ICMP error message means to a MacTCP stream. ICMPMessageType is
// MacTCP's numbering (the detail of TCP's and UDP's `.icmpReceived`), ICMPReport the whole
// message as a UDP stream receives it from the kernel's error queue, with the names of the
// messages. It calls nothing: the streams and the system layer fill these values in.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// ICMP message types in MacTCP's numbering: the detail of ``TCPEvent/icmpReceived``.
public enum ICMPMessageType: Int, Sendable {
    /// Destination network unreachable.
    case netUnreach = 0
    /// Destination host unreachable.
    case hostUnreach = 1
    /// Protocol unreachable.
    case protocolUnreach = 2
    /// Port unreachable.
    case portUnreach = 3
    /// Fragmentation needed and Don't Fragment set.
    case fragReqd = 4
    /// Source route failed.
    case sourceRouteFailed = 5
    /// Time to live exceeded in transit.
    case timeExceeded = 6
    /// Parameter problem in the IP header.
    case parmProblem = 7
    /// A required IP option is missing.
    case missingOption = 8

    /// Maps an ICMP type and code (RFC 792) to MacTCP's numbering.
    init?(icmpType: UInt8, code: UInt8) {
        switch (icmpType, code) {
        case (3, 0), (3, 6), (3, 9), (3, 11): self = .netUnreach
        case (3, 1), (3, 7), (3, 8), (3, 10), (3, 12), (3, 13), (3, 14), (3, 15): self = .hostUnreach
        case (3, 2): self = .protocolUnreach
        case (3, 3): self = .portUnreach
        case (3, 4): self = .fragReqd
        case (3, 5): self = .sourceRouteFailed
        case (11, _): self = .timeExceeded
        case (12, 1): self = .missingOption
        case (12, _): self = .parmProblem
        default: return nil
        }
    }

    /// Maps an ICMPv6 type and code (RFC 4443) to MacTCP's numbering: no route and a reject
    /// route are the network's, the other destination-unreachable codes the host's (the port
    /// its own), packet too big is fragmentation needed.
    init?(icmpv6Type: UInt8, code: UInt8) {
        switch (icmpv6Type, code) {
        case (1, 0), (1, 6): self = .netUnreach
        case (1, 4): self = .portUnreach
        case (1, _): self = .hostUnreach
        case (2, _): self = .fragReqd
        case (3, _): self = .timeExceeded
        case (4, _): self = .parmProblem
        default: return nil
        }
    }

    /// Maps a message of either family (`icmpv6`: RFC 4443's numbering).
    init?(icmpType: UInt8, code: UInt8, icmpv6: Bool) {
        if icmpv6 {
            self.init(icmpv6Type: icmpType, code: code)
        } else {
            self.init(icmpType: icmpType, code: code)
        }
    }

    /// The best guess from the errno the kernel reports for an ICMP error on a TCP socket
    /// (Linux does not queue the ICMP message itself for TCP connections).
    init?(errno: Int32) {
        switch errno {
        case ENETUNREACH: self = .netUnreach
        case EHOSTUNREACH, EHOSTDOWN, ENONET: self = .hostUnreach
        case ENOPROTOOPT: self = .protocolUnreach
        case ECONNREFUSED: self = .portUnreach
        case EMSGSIZE: self = .fragReqd
        case EOPNOTSUPP: self = .sourceRouteFailed
        case EPROTO: self = .parmProblem
        default: return nil
        }
    }
}
