// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP
import Testing

@Suite("Status", .timeLimit(.minutes(1)))
struct StatusTests {
    @Test("status agrees with the peer's own view of the connection", arguments: LoopbackFamily.allCases)
    func againstPeer(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        try pair.peer.send([UInt8](repeating: 5, count: 3000))
        try waitUntil("3000 unread") { try pair.stream.status().amtUnreadData == 3000 }
        let status = try pair.stream.status()
        #expect(status.state == .established)
        #expect(status.connectionState == 8)
        // The UInt32 fields read 0 on an IPv6 connection (SPEC §7); the addresses say it all.
        let host = family == .ipv4 ? IPv4.loopback : 0
        #expect(status.localHost == host && status.localAddress == family.address)
        #expect(status.localPort == pair.peer.remotePort)
        #expect(status.remoteHost == host && status.remoteAddress == family.address)
        #expect(status.remotePort == pair.peer.localPort)
        #expect(status.amtUnreadData == 3000)
        #expect(status.amtUnackedData == 0)
        #expect(status.sendWindow > 0)
        #expect(status.rcvWindow > 0)
        #expect(status.congestionWindow >= status.sendMaxSegSize)
        #expect(status.sendMaxSegSize > 500)
        #expect(status.srtt >= 0 && status.srtt < 1000)
        #expect(status.ulpTimeoutValue == 120)
        #expect(status.ulpAction == .abort)
        // Relative sequence numbers: SYN (1) + data.
        #expect(status.rcvNext == 1 + 3000)
        #expect(status.sendUnacked == 1)
        #expect(status.sendNext == 1)
        try pair.stream.send([UInt8](repeating: 6, count: 500), waitForAck: true)
        let after = try pair.stream.status()
        #expect(after.sendUnacked == 1 + 500)
        #expect(after.sendNext == 1 + 500)
        _ = try pair.peer.receive(exactly: 500)
        _ = try pair.stream.receive(timeout: 5, maxLength: 3000)
        #expect(try pair.stream.status().amtUnreadData == 0)
    }

    @Test("a passive connection counts sequence numbers the same way", arguments: LoopbackFamily.allCases)
    func passiveSequence(_ family: LoopbackFamily) throws {
        let pair = try passivePair(family: family)
        try pair.stream.send([UInt8](repeating: 1, count: 100), waitForAck: true)
        try pair.peer.send([UInt8](repeating: 2, count: 40))
        try waitUntil("40 unread") { try pair.stream.status().amtUnreadData == 40 }
        let status = try pair.stream.status()
        #expect(status.sendUnacked == 101)
        #expect(status.rcvNext == 41)
        #expect(status.localPort == pair.stream.getSockName().port)
        #expect(status.remotePort == pair.peer.localPort)
    }

    @Test("data waiting in the send queue shows as unacknowledged, the peer's full window as zero")
    func zeroWindow() throws {
        let listener = try Peer.listener()
        listener.setReceiveBuffer(4096)
        let stream = try TCPStream()
        try stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        let peer = try listener.accept()
        let sending = Background { try stream.send([UInt8](repeating: 1, count: 20_000_000)) }
        try waitUntil(timeout: 10, "a closed window") { try stream.status().sendWindow == 0 }
        #expect(!sending.isFinished)
        _ = try peer.receive(exactly: 20_000_000, timeout: 30)
        _ = try sending.value().get()
    }

    @Test("states through a close: FIN wait 2 after our close, close wait after the peer's", arguments: LoopbackFamily.allCases)
    func states(_ family: LoopbackFamily) throws {
        let first = try activePair(family: family)
        try first.stream.close()
        #expect(try first.stream.status().state == .finWait2)
        #expect(try first.stream.status().connectionState == 12)
        let second = try activePair(family: family)
        second.peer.shutdownWrite()
        try waitUntil("close wait") { try second.stream.status().state == .closeWait }
        #expect(try second.stream.status().connectionState == 14)
    }
}
