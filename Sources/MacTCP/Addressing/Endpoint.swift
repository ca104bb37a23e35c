// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// A socket address of either family as the library keeps it: an IP address and a port in
/// host byte order. Streams, listeners and the resolver's exchanges all use it; MacTCP's
/// `UInt32` host is ``host`` (0 for IPv6).
struct Endpoint: Equatable, Hashable, Sendable, CustomStringConvertible {
    var address: IPAddress
    var port: UInt16

    init(_ address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    /// An IPv4 endpoint, MacTCP's host and port.
    init(host: UInt32, port: UInt16) {
        self.init(.v4(host), port: port)
    }

    /// The IPv4 address in host byte order, MacTCP's host; 0 for an IPv6 endpoint.
    var host: UInt32 { address.ipv4 ?? 0 }

    /// The unspecified IPv4 address and port, `0.0.0.0:0`.
    static let none = Endpoint(host: 0, port: 0)

    /// Every local address of one family (`0.0.0.0` or `::`) and `port`: what a socket binds
    /// to for a local port only.
    static func any(port: UInt16, ipv6: Bool) -> Endpoint {
        ipv6 ? Endpoint(.v6(.unspecified), port: port) : Endpoint(host: 0, port: port)
    }

    /// `10.0.0.1:53` or `[::1]:53`.
    var description: String {
        address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    /// `addr`, `addr:port`, `[v6addr]:port` or a bare IPv6 address (`::1`, `fe80::1%eth0`),
    /// the port `defaultPort` when not given; nil when malformed or the port is 0.
    init?(parsing text: String, defaultPort: UInt16) {
        guard let (address, port) = IPAddress.parse(hostAndPort: text), (port ?? defaultPort) != 0 else { return nil }
        self.init(address, port: port ?? defaultPort)
    }
}
