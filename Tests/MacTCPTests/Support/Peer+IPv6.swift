// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP
import Testing

/// Plain IPv6 sockets for the tests: listening on or connecting to an address given as text
/// (`::1`, `fd00:213:2::1`), with the same deadlines as the IPv4 ones.
extension Peer {
    /// A listening IPv6-only socket on `address` (port 0: any free port).
    static func listener6(_ address: String = "::1", port: UInt16 = 0, backlog: Int32 = 16) throws -> Peer {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &one, 4)
        try check(try withAddress6(address, port) { Glibc.bind(fd, $0, $1) }, "bind \(address)")
        try check(Glibc.listen(fd, backlog), "listen")
        return Peer(fd: fd)
    }

    /// Connects to `address` (IPv6 text) and `port`, optionally from `localAddress`.
    static func connect6(_ address: String = "::1", port: UInt16, from localAddress: String? = nil, timeout: Double = 5) throws -> Peer {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        let peer = Peer(fd: fd)
        if let localAddress {
            try check(try withAddress6(localAddress, 0) { Glibc.bind(fd, $0, $1) }, "bind \(localAddress)")
        }
        try peer.connect(timeout: timeout) { try withAddress6(address, port) { Glibc.connect(fd, $0, $1) } }
        return peer
    }

    /// Whether a client connecting to 127.0.0.1:`port` is reset once connected (a filter
    /// turned it away): the reset may end the connect itself or the first receive. False
    /// when the connect is refused (nothing listens yet) or the connection stays open.
    static func isReset(connectingTo port: UInt16) throws -> Bool {
        let client: Peer
        do {
            client = try connect(port: port, timeout: 5)
        } catch let failure as ConnectFailure {
            return failure.errno == ECONNRESET
        }
        do {
            _ = try client.receive(timeout: 5)
            return false
        } catch let failure as ReceiveFailure {
            return failure.errno == ECONNRESET
        }
    }

    /// The peer's address as the kernel has it (IPv6 text; IPv4-mapped for an IPv4 peer).
    var remoteAddress6: String {
        var address = sockaddr_in6()
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &length) }
        }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        inet_ntop(AF_INET6, &address.sin6_addr, &text, socklen_t(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func withAddress6<R>(_ text: String, _ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) throws -> R {
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_port = port.bigEndian
        guard inet_pton(AF_INET6, text, &address.sin6_addr) == 1 else { throw PeerError(description: "not IPv6: \(text)") }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
    }
}

/// The family a parameterised suite runs over, on each family's loopback: the same behaviour
/// test against an IPv4 peer and an IPv6 one.
enum LoopbackFamily: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case ipv4, ipv6

    /// `127.0.0.1` or `::1`.
    var address: IPAddress { self == .ipv4 ? .v4(IPv4.loopback) : .v6(.loopback) }

    /// A plain listening socket of this family on its loopback.
    func listener(port: UInt16 = 0) throws -> Peer {
        self == .ipv4 ? try Peer.listener(port: port) : try Peer.listener6(port: port)
    }

    var testDescription: String { self == .ipv4 ? "IPv4" : "IPv6" }
}
