// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// A socket address of either family: an IP address and a port in host byte order. The
/// resolver's exchanges use it (name servers may be IPv6); the streams keep ``Endpoint``.
struct SocketAddress: Equatable, Hashable, Sendable, CustomStringConvertible {
    var address: IPAddress
    var port: UInt16

    init(_ address: IPAddress, port: UInt16) {
        self.address = address
        self.port = port
    }

    init(_ endpoint: Endpoint) {
        self.init(.v4(endpoint.host), port: endpoint.port)
    }

    /// `10.0.0.1:53` or `[::1]:53`.
    var description: String {
        address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
    }

    /// `addr`, `addr:port`, `[v6addr]:port` or a bare IPv6 address (`::1`, `fe80::1%eth0`),
    /// the port `defaultPort` when not given; nil when malformed or the port is 0.
    init?(parsing text: String, defaultPort: UInt16) {
        var host = Substring(text)
        var port = defaultPort
        let bracketed = host.hasPrefix("[")
        if bracketed {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let value = UInt16(rest.dropFirst()) else { return nil }
                port = value
            }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            guard let value = UInt16(host[host.index(after: colon)...]) else { return nil }
            port = value
            host = host[..<colon]
        }
        guard port != 0 else { return nil }
        if let v4 = DNRNames.dottedQuad(String(host)), !bracketed {
            self.init(.v4(v4), port: port)
        } else if !host.contains("."), let v6 = IPv6Address(String(host)) {
            self.init(.v6(v6), port: port)
        } else if let v6 = IPv6Address(String(host)), let mapped = v6.mappedIPv4, bracketed {
            self.init(.v4(mapped), port: port)
        } else {
            return nil
        }
    }
}
