// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import Testing

@testable import MacTCP

/// ICMPv6 errors from the router of a `NetworkLab` (IPV6_RECVERR): destination unreachable and
/// packet too big, for UDP and for TCP, with their exact types and codes.
@Suite(
    "ICMPv6 from a router", .serialized, .timeLimit(.minutes(1)),
    .enabled(if: NetworkLab.isAvailable, "needs root and iproute2 for network namespaces"))
struct ICMPv6Tests {
    @Test(
        "UDP: unreachable from the router: ICMPv6 type 1 with its code, the router, the original destination; the stream lives on",
        arguments: [
            ("fd00:213:9::5", UInt8(0), ICMPMessageType.netUnreach),
            ("fd00:214::5", UInt8(0), ICMPMessageType.netUnreach),
            ("fd00:213:8::5", UInt8(1), ICMPMessageType.hostUnreach),
        ])
    func udpUnreachable(destination text: String, code: UInt8, type: ICMPMessageType) throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let destination = try #require(IPAddress(text))
        let stream = try UDPStream()
        defer { stream.release() }
        try stream.write(address: destination, port: 4000, Array("hello?".utf8))
        try waitUntil("the ICMPv6 report") { stream.lastICMPReport != nil }
        try stream.write(address: destination, port: 4000, [1])
        let report = try #require(stream.lastICMPReport)
        #expect(report.isICMPv6 && report.icmpType == 1 && report.icmpCode == code, "\(report)")
        #expect(report.reportType == type)
        #expect(report.reportingAddress == NetworkLab.routerAddress6 && report.reportingHost == 0)
        #expect(report.remoteAddress == destination && report.remotePort == 4000 && report.remoteHost == 0)
    }

    @Test("UDP: a datagram larger than the next link: packet too big (type 2) with the link's MTU; the next one goes through")
    func udpPacketTooBig() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let receiver = try lab.within(lab.server) { try UDPPeer(ipv6: "fd00:213:2::1", port: 4000) }
        let stream = try UDPStream()
        defer { stream.release() }
        let big = [UInt8](repeating: 0x5A, count: 1400)
        try stream.write(address: NetworkLab.serverAddress6, port: 4000, big)
        try waitUntil("the packet-too-big report") { stream.lastICMPReport != nil }
        let report = try #require(stream.lastICMPReport)
        #expect(report.isICMPv6 && report.icmpType == 2 && report.icmpCode == 0, "\(report)")
        #expect(report.reportType == .fragReqd)
        #expect(report.optionalAddlInfo == 1280, "the MTU the router gave")
        #expect(report.reportingAddress == NetworkLab.routerAddress6)
        #expect(report.remoteAddress == NetworkLab.serverAddress6 && report.remotePort == 4000)
        // The path MTU is learnt: the same datagram now leaves in fragments and arrives whole.
        try stream.write(address: NetworkLab.serverAddress6, port: 4000, big)
        #expect(try receiver.receive(timeout: 5).data == big)
    }

    @Test(
        "TCP: an open to an unreachable destination: openFailed with the errno of the ICMPv6 code, and .icmpReceived with its type",
        arguments: [
            ("fd00:213:9::5", ENETUNREACH, ICMPMessageType.netUnreach),
            ("fd00:213:8::5", EACCES, ICMPMessageType.hostUnreach),
        ])
    func tcpUnreachableOpen(destination text: String, errno expected: Int32, type: ICMPMessageType) throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let log = EventLog()
        let stream = try TCPStream()
        defer { stream.release() }
        log.attach(to: stream)
        var failure: MacTCPError?
        do {
            try stream.activeOpen(address: try #require(IPAddress(text)), remotePort: 9, timeout: .seconds(5))
        } catch let error as MacTCPError {
            failure = error
        }
        #expect(failure == .openFailed)
        #expect(failure?.errno == expected, "\(String(describing: failure))")
        try log.wait(for: .icmpReceived)
        #expect(log.details(.icmpReceived).first == type.rawValue)
    }

    @Test("TCP: a path whose MTU drops to 1,280 at the router: the segment size follows and every byte arrives in order")
    func tcpPathMTU() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let listener = try lab.within(lab.server) { try Peer.listener6("fd00:213:2::1", port: 7000) }
        let stream = try TCPStream()
        defer { stream.release() }
        try stream.activeOpen(address: NetworkLab.serverAddress6, remotePort: 7000, timeout: .seconds(5))
        let peer = try listener.accept()
        let before = try stream.status().sendMaxSegSize
        let data = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        try stream.send(data)
        #expect(try peer.receive(exactly: data.count, timeout: 20) == data)
        let after = try stream.status().sendMaxSegSize
        // 1,280 less the IPv6 and TCP headers (and the timestamps option): at most 1,220.
        #expect(before > 1220 && after <= 1220, "segment size \(before) then \(after)")
    }
}
