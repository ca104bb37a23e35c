// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import Testing

@testable import MacTCP

/// The socket options a connection carries, read back from the kernel with `getsockopt`: what
/// push, urgent data, ICMP reports, the ULP timeout and the IP header options rest on.
@Suite("Socket options as the kernel holds them", .timeLimit(.minutes(1)))
struct SocketOptionTests {
    /// The descriptor of the stream's connection.
    static func descriptor(of stream: TCPStream) -> Int32? {
        stream.core.withLock { state -> Int32? in
            if case .connected(let connection) = state.phase { return connection.descriptor.number }
            return nil
        }
    }

    static func option(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int32 {
        var value: Int32 = -1
        var length = socklen_t(MemoryLayout<Int32>.size)
        #expect(getsockopt(fd, level, name, &value, &length) == 0)
        return value
    }

    @Test("active and passive connections: TCP_NODELAY (push is prompt), SO_OOBINLINE, IP_RECVERR, the 2-minute user timeout")
    func commonOptions() throws {
        for pair in [try activePair(), try passivePair()] {
            let fd = try #require(Self.descriptor(of: pair.stream))
            #expect(Self.option(fd, Int32(IPPROTO_TCP), Int32(TCP_NODELAY)) == 1)
            #expect(Self.option(fd, Int32(SOL_SOCKET), Int32(SO_OOBINLINE)) == 1)
            #expect(Self.option(fd, Int32(IPPROTO_IP), Int32(IP_RECVERR)) == 1)
            #expect(Self.option(fd, Int32(IPPROTO_TCP), Int32(TCP_USER_TIMEOUT)) == 120_000)
            #expect(Self.option(fd, Int32(IPPROTO_IP), Int32(IP_TOS)) == 0)
            pair.stream.release()
        }
    }

    @Test("the open options reach the socket: type of service and precedence, TTL, don't-fragment, ULP timeout, receive buffer")
    func openOptions() throws {
        let options = TCPOpenOptions(
            ulpTimeout: .milliseconds(2500), ulpAction: .abort, typeOfService: [.lowDelay, .reliability], precedence: 5,
            timeToLive: 17, dontFragment: true)
        let active = try activePair(options: options, receiveBufferSize: 65536)
        let passive = try passivePair(options: options)
        for pair in [active, passive] {
            let fd = try #require(Self.descriptor(of: pair.stream))
            // Precedence in the top three bits, then D (0x10), T (0x08), R (0x04).
            #expect(Self.option(fd, Int32(IPPROTO_IP), Int32(IP_TOS)) == 5 << 5 | 0x10 | 0x04)
            #expect(Self.option(fd, Int32(IPPROTO_IP), Int32(IP_TTL)) == 17)
            #expect(Self.option(fd, Int32(IPPROTO_IP), Int32(IP_MTU_DISCOVER)) == Int32(IP_PMTUDISC_DO))
            #expect(Self.option(fd, Int32(IPPROTO_TCP), Int32(TCP_USER_TIMEOUT)) == 2500)
            #expect(Self.option(fd, Int32(IPPROTO_TCP), Int32(TCP_NODELAY)) == 1)
            // And status reports what was asked for, in MacTCP's terms.
            let status = try pair.stream.status()
            #expect(status.precedence == 5)
            #expect(status.tosFlags == Int(TypeOfService([.lowDelay, .reliability]).rawValue))
            #expect(status.ulpTimeoutValue == 2)
            #expect(status.ulpAction == .abort)
        }
        // The kernel doubles what it is asked for: the buffer asked for is the size given.
        let activeFD = try #require(Self.descriptor(of: active.stream))
        #expect(Self.option(activeFD, Int32(SOL_SOCKET), Int32(SO_RCVBUF)) == 65536)
        let throughput = try activePair(options: TCPOpenOptions(typeOfService: .throughput))
        let fd = try #require(Self.descriptor(of: throughput.stream))
        #expect(Self.option(fd, Int32(IPPROTO_IP), Int32(IP_TOS)) == 0x08)
    }

    @Test("the report action leaves the kernel's user timeout off once open: the library reports instead of aborting")
    func reportActionUserTimeout() throws {
        let options = TCPOpenOptions(ulpTimeout: .seconds(3), ulpAction: .report)
        for pair in [try activePair(options: options), try passivePair(options: options)] {
            let fd = try #require(Self.descriptor(of: pair.stream))
            #expect(Self.option(fd, Int32(IPPROTO_TCP), Int32(TCP_USER_TIMEOUT)) == 0)
        }
    }

    @Test("keepalive is off by default; asked for, SO_KEEPALIVE with its idle time, interval and count in whole seconds")
    func keepalive() throws {
        let plain = try activePair()
        let plainFD = try #require(Self.descriptor(of: plain.stream))
        #expect(Self.option(plainFD, Int32(SOL_SOCKET), Int32(SO_KEEPALIVE)) == 0)
        let options = TCPOpenOptions(keepalive: TCPKeepalive(idle: .milliseconds(2500), interval: .seconds(3), count: 4))
        for pair in [try activePair(options: options), try passivePair(options: options)] {
            let fd = try #require(Self.descriptor(of: pair.stream))
            #expect(Self.option(fd, Int32(SOL_SOCKET), Int32(SO_KEEPALIVE)) == 1)
            #expect(Self.option(fd, Int32(IPPROTO_TCP), Int32(TCP_KEEPIDLE)) == 3)
            #expect(Self.option(fd, Int32(IPPROTO_TCP), Int32(TCP_KEEPINTVL)) == 3)
            #expect(Self.option(fd, Int32(IPPROTO_TCP), Int32(TCP_KEEPCNT)) == 4)
        }
        let stream = try TCPStream()
        for bad in [
            TCPKeepalive(idle: .zero), TCPKeepalive(interval: .seconds(-1)), TCPKeepalive(idle: .seconds(32_768)),
            TCPKeepalive(count: 0), TCPKeepalive(count: 128),
        ] {
            expectMacTCPError(.invalidLength) {
                try stream.activeOpen(host: IPv4.loopback, remotePort: 9, options: TCPOpenOptions(keepalive: bad))
            }
            expectMacTCPError(.invalidLength) { try stream.passiveOpen(options: TCPOpenOptions(keepalive: bad)) }
        }
    }
}
