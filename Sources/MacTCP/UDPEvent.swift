/// An event a UDP stream's ASR receives.
///
/// The detail is the ICMP message type in MacTCP's numbering (``ICMPMessageType``) for
/// ``icmpReceived``, and 0 for ``dataArrival``.
public enum UDPEvent: Int, Sendable {
    /// A datagram arrived while no `read` was in progress; not repeated until a `read` has
    /// returned. The corresponding MacTCP event is `UDPDataArrival`.
    case dataArrival = 1
    /// An ICMP error about a datagram this stream sent; ``UDPStream/lastICMPReport`` has
    /// its details. The corresponding MacTCP event is `UDPICMPReceived`.
    case icmpReceived = 2
}

/// One datagram received by a UDP stream, with its sender.
public struct UDPDatagram: Sendable, Equatable {
    /// The datagram's bytes (possibly none: zero-length datagrams are delivered).
    public var data: [UInt8]
    /// The sender's IPv4 address (host byte order).
    public var remoteHost: UInt32
    /// The sender's port.
    public var remotePort: UInt16

    /// Creates a datagram record.
    public init(data: [UInt8], remoteHost: UInt32, remotePort: UInt16) {
        self.data = data
        self.remoteHost = remoteHost
        self.remotePort = remotePort
    }
}

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
    }
}
