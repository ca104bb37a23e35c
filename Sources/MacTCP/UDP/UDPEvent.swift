// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

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
    /// The sender's address of either family (``remoteHost`` is 0 for IPv6; an IPv4 sender is
    /// `.v4`).
    public var remoteAddress: IPAddress

    /// Creates a datagram record from an IPv4 sender.
    public init(data: [UInt8], remoteHost: UInt32, remotePort: UInt16) {
        self.init(data: data, remoteAddress: .v4(remoteHost), remotePort: remotePort)
    }

    /// Creates a datagram record from a sender of either family.
    public init(data: [UInt8], remoteAddress: IPAddress, remotePort: UInt16) {
        self.data = data
        self.remoteHost = remoteAddress.ipv4 ?? 0
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
    }
}

extension UDPDatagram: CustomStringConvertible {
    /// The datagram's size and sender, for example `UDPDatagram(5 bytes from 127.0.0.1:40312)`
    /// (an IPv6 sender in brackets).
    public var description: String {
        "UDPDatagram(\(data.count) bytes from \(Endpoint(remoteAddress, port: remotePort)))"
    }
}
