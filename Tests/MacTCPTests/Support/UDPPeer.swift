// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP

/// A plain UDP socket on loopback: the independent peer of the UDP tests.
final class UDPPeer: Sendable {
    let fd: Int32

    init(port: UInt16 = 0) throws {
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var address = Self.address(IPv4.loopback, port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if bound < 0 { throw PeerError(description: "bind: \(String(cString: strerror(errno)))") }
    }

    /// A plain IPv6 UDP socket bound to `address` and `port` (in the namespace of the thread
    /// that makes it).
    init(ipv6 address: String, port: UInt16) throws {
        fd = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var local = sockaddr_in6()
        local.sin6_family = sa_family_t(AF_INET6)
        local.sin6_port = port.bigEndian
        guard inet_pton(AF_INET6, address, &local.sin6_addr) == 1 else { throw PeerError(description: "not IPv6: \(address)") }
        let bound = withUnsafePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        }
        if bound < 0 { throw PeerError(description: "bind: \(String(cString: strerror(errno)))") }
    }

    deinit {
        Glibc.close(fd)
    }

    var port: UInt16 {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return UInt16(bigEndian: address.sin_port)
    }

    func setReceiveBuffer(_ size: Int32) {
        var value = size
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, 4)
    }

    func send(_ bytes: [UInt8], to port: UInt16) throws {
        var address = Self.address(IPv4.loopback, port)
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        if sent != bytes.count { throw PeerError(description: "sendto: \(String(cString: strerror(errno)))") }
    }

    /// Receives one datagram within the deadline, with its sender's port.
    func receive(timeout: Double = 5) throws -> (data: [UInt8], port: UInt16) {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, Int32(timeout * 1000)) == 1 else { throw PeerError(description: "UDP receive timed out") }
        var buffer = [UInt8](repeating: 0, count: 65536)
        var address = sockaddr_in6()  // room for either family; the port is at the same place
        var length = socklen_t(MemoryLayout<sockaddr_in6>.size)
        let n = buffer.withUnsafeMutableBytes { raw in
            withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { recvfrom(fd, raw.baseAddress, raw.count, 0, $0, &length) }
            }
        }
        if n < 0 { throw PeerError(description: "recvfrom: \(String(cString: strerror(errno)))") }
        return (Array(buffer[0..<n]), UInt16(bigEndian: address.sin6_port))
    }

    private static func address(_ host: UInt32, _ port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = host.bigEndian
        return address
    }
}
