// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP
import Testing

/// UDP streams over IPv6 against plain IPv6 datagram sockets on `::1`: both directions, the
/// sender as `IPAddress`, ICMPv6 reports with their own types, names, sizes and bad addresses.
@Suite("UDP over IPv6", .timeLimit(.minutes(1)))
struct UDPIPv6Tests {
    /// A plain IPv6 UDP socket bound to ::1 (port 0: any).
    final class Peer6: Sendable {
        let fd: Int32
        let port: UInt16

        init(port: UInt16 = 0) throws {
            let fd = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
            var address = Self.loopback(port)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
            guard bound == 0 else {
                close(fd)
                throw PeerError(description: "bind ::1: \(String(cString: strerror(errno)))")
            }
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            _ = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
            }
            self.fd = fd
            self.port = UInt16(bigEndian: address.sin6_port)
        }

        deinit { close(fd) }

        static func loopback(_ port: UInt16) -> sockaddr_in6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            address.sin6_addr.__in6_u.__u6_addr8.15 = 1
            return address
        }

        func send(_ bytes: [UInt8], to port: UInt16) {
            var address = Self.loopback(port)
            _ = bytes.withUnsafeBytes { data in
                withUnsafePointer(to: &address) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, data.baseAddress, data.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                    }
                }
            }
        }

        /// One datagram within the deadline, and the port it came from.
        func receive(timeout: Double = 5) throws -> (bytes: [UInt8], port: UInt16) {
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, Int32(timeout * 1000)) == 1 else { throw PeerError(description: "no datagram") }
            var buffer = [UInt8](repeating: 0, count: 70_000)
            var from = sockaddr_in6()
            var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
            let count = buffer.withUnsafeMutableBytes { data in
                withUnsafeMutablePointer(to: &from) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, data.baseAddress, data.count, 0, $0, &length) }
                }
            }
            guard count >= 0 else { throw PeerError(description: "recvfrom: \(String(cString: strerror(errno)))") }
            return (Array(buffer[0..<count]), UInt16(bigEndian: from.sin6_port))
        }
    }

    @Test("a datagram each way with ::1: the sender as IPAddress, remoteHost 0")
    func bothWays() throws {
        let stream = try UDPStream()
        defer { stream.release() }
        let peer = try Peer6()
        try stream.write(address: .v6(.loopback), port: peer.port, Array("to six".utf8))
        let (bytes, from) = try peer.receive()
        #expect(bytes == Array("to six".utf8) && from == stream.port)
        peer.send(Array("from six".utf8), to: stream.port)
        let datagram = try stream.read(timeout: .seconds(5))
        #expect(datagram.data == Array("from six".utf8))
        #expect(datagram.remoteAddress == .v6(.loopback) && datagram.remoteHost == 0 && datagram.remotePort == peer.port)
        #expect(datagram.description == "UDPDatagram(8 bytes from [::1]:\(peer.port))")
        // The same stream still speaks IPv4, its senders as UInt32 hosts.
        try stream.write(host: IPv4.loopback, port: stream.port, [1, 2, 3])
        let own = try stream.read(timeout: .seconds(5))
        #expect(own.remoteHost == IPv4.loopback && own.remoteAddress == .v4(IPv4.loopback) && own.data == [1, 2, 3])
    }

    @Test("a datagram to a closed IPv6 port: an ICMPv6 port-unreachable report with its own type and code")
    func portUnreachable() throws {
        let stream = try UDPStream()
        defer { stream.release() }
        let closed = try Peer6().port  // bound, then closed at once
        try stream.write(address: .v6(.loopback), port: closed, Array("anyone?".utf8))
        try waitUntil(timeout: 5, "the ICMPv6 report") { stream.lastICMPReport != nil }
        let report = try #require(stream.lastICMPReport)
        #expect(report.isICMPv6 && report.icmpType == 1 && report.icmpCode == 4 && report.reportType == .portUnreach, "\(report)")
        #expect(report.remoteAddress == .v6(.loopback) && report.remotePort == closed && report.remoteHost == 0)
        #expect(report.reportingAddress == .v6(.loopback) && report.errno == ECONNREFUSED)
        #expect(report.description.hasPrefix("port unreachable (ICMPv6 type 1, code 4) from ::1 about [::1]:\(closed)"), "\(report)")
        // The stream goes on.
        try stream.write(address: .v6(.loopback), port: stream.port, [9])
        #expect(try stream.read(timeout: .seconds(5)).data == [9])
    }

    @Test("by name: localhost's first address is ::1; sizes up to 65,527 bytes to IPv6, one more refused")
    func namesAndSizes() throws {
        let stream = try UDPStream()
        defer { stream.release() }
        let peer = try Peer6()
        try stream.write(host: "localhost", port: peer.port, Array("by name".utf8))
        #expect(try peer.receive().bytes == Array("by name".utf8))
        try stream.write(host: "::1", port: peer.port, [UInt8](repeating: 0xA5, count: UDPStream.maximumIPv6DatagramSize))
        #expect(try peer.receive().bytes.count == 65_527)
        expectMacTCPError(.invalidLength) {
            try stream.write(address: .v6(.loopback), port: peer.port, [UInt8](repeating: 0, count: 65_528))
        }
        expectMacTCPError(.invalidLength) {
            try stream.write(host: IPv4.loopback, port: peer.port, [UInt8](repeating: 0, count: 65_508))
        }
    }

    @Test("bad addresses: ::, a link-local address without its interface, port 0, a malformed name")
    func badAddresses() throws {
        let stream = try UDPStream()
        defer { stream.release() }
        expectMacTCPError(.ipBadAddr) {
            try stream.write(address: .v6(IPv6Address(bytes: [UInt8](repeating: 0, count: 16))!), port: 9, [1])
        }
        expectMacTCPError(.ipBadAddr) { try stream.write(address: IPAddress("fe80::1")!, port: 9, [1]) }
        expectMacTCPError(.ipBadAddr) { try stream.write(address: .v6(.loopback), port: 0, [1]) }
        expectMacTCPError(.nameSyntaxErr) { try stream.write(host: "bad..name", port: 9, [1]) }
    }
}
