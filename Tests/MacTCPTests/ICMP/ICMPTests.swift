// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP
import Testing

/// ICMP errors from a router in network namespaces the test creates (IP_RECVERR).
@Suite("ICMP", .serialized, .timeLimit(.minutes(1)), .enabled(if: NetworkLab.isAvailable, "needs root and iproute2 for network namespaces"))
struct ICMPTests {
    @Test(
        "host and net unreachable during an active open: openFailed plus .icmpReceived with the exact type",
        arguments: [
            (0x0AD5_0905 as UInt32, ICMPMessageType.hostUnreach, EHOSTUNREACH),
            (0x0AD6_0005 as UInt32, ICMPMessageType.netUnreach, ENETUNREACH),
            (0x0AD5_0805 as UInt32, ICMPMessageType.hostUnreach, EHOSTUNREACH),
        ])
    func unreachableOpen(address: UInt32, type: ICMPMessageType, errno expected: Int32) throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let log = EventLog()
        let stream = try TCPStream()
        log.attach(to: stream)
        var failure: MacTCPError?
        do {
            try stream.activeOpen(host: address, remotePort: 9, timeout: 5)
        } catch let error as MacTCPError {
            failure = error
        }
        #expect(failure == .openFailed)
        #expect(failure?.errno == expected)
        try log.wait(for: .icmpReceived)
        #expect(log.details(.icmpReceived).first == type.rawValue)
    }

    @Test(
        "crafted ICMP answers to the SYN: openFailed with each message's own errno, and .icmpReceived with its type",
        arguments: [
            (UInt8(3), UInt8(1), EHOSTUNREACH, ICMPMessageType.hostUnreach),
            (UInt8(3), UInt8(3), ECONNREFUSED, ICMPMessageType.portUnreach),
            (UInt8(12), UInt8(0), EPROTO, ICMPMessageType.parmProblem),
        ])
    func craftedAnswerToSYN(type: UInt8, code: UInt8, errno expected: Int32, reported: ICMPMessageType) throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        // 10.213.2.99 is nobody: the router sends its packets to the server's link, whose
        // host drops them (it does not forward); the script there answers the SYN.
        let mac = try shell("ip -n \(lab.server) -o link show s0 | sed -n 's/.*link\\/ether \\([0-9a-f:]*\\).*/\\1/p'")
            .trimmingCharacters(in: .whitespacesAndNewlines)
        try lab.inRouter("ip neigh replace 10.213.2.99 lladdr \(mac) dev rs nud permanent")
        let answering = try ChildProcess(
            "ip", ["netns", "exec", lab.server, "python3", "-c", icmpAnswerScript, "10.213.2.99", String(type), String(code)])
        try waitUntil(timeout: 10, "the answering script") { answering.output.contains("READY") }
        let log = EventLog()
        let stream = try TCPStream()
        log.attach(to: stream)
        var failure: MacTCPError?
        do {
            try stream.activeOpen(host: 0x0AD5_0263, remotePort: 9, timeout: 5)
        } catch let error as MacTCPError {
            failure = error
        }
        answering.send(SIGTERM)
        _ = try? answering.finish(timeout: 5)
        #expect(failure == .openFailed)
        #expect(failure?.errno == expected, "\(String(describing: failure))")
        try log.wait(for: .icmpReceived)
        #expect(log.details(.icmpReceived).first == reported.rawValue)
    }

    @Test("a peer that never answers: openFailed with ETIMEDOUT at the timeout, or at the ULP timeout without one")
    func silentPeer() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        var outcomes: [(MacTCPError?, Double)] = []
        let stream = try TCPStream()
        for (timeout, ulp) in [(Duration.milliseconds(500), Duration.seconds(120)), (.zero, .seconds(1))] {
            let start = Clock.now
            do {
                try stream.activeOpen(host: 0x0AD5_0705, remotePort: 9, timeout: timeout, options: TCPOpenOptions(ulpTimeout: ulp))
                outcomes.append((nil, Clock.now - start))
            } catch let error as MacTCPError {
                outcomes.append((error, Clock.now - start))
            }
        }
        for (error, elapsed) in outcomes {
            #expect(error == .openFailed)
            #expect(error?.errno == ETIMEDOUT)
            #expect(elapsed >= 0.45 && elapsed < 5, "gave up after \(elapsed) s")
        }
        #expect(outcomes[1].1 >= 0.95)
    }

    @Test("an ICMP error on an established connection is reported and the connection survives")
    func icmpWhileEstablished() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let listener = try lab.within(lab.server) { try Peer.listener(port: 7000, host: 0) }
        let log = EventLog()
        let stream = try TCPStream()
        log.attach(to: stream)
        try stream.activeOpen(host: NetworkLab.serverAddress, remotePort: 7000, timeout: 5)
        let peer = try listener.accept()
        try lab.inRouter("ip route add unreachable 10.213.2.1/32")
        try stream.send("through the broken path")
        try log.wait(for: .icmpReceived, timeout: 10)
        #expect(log.details(.icmpReceived).first == ICMPMessageType.hostUnreach.rawValue)
        #expect(try stream.status().state == .established)
        try lab.inRouter("ip route del unreachable 10.213.2.1/32")
        #expect(try peer.receive(exactly: 23, timeout: 20) == Array("through the broken path".utf8))
        try peer.send("still here")
        #expect(try stream.receive(timeout: 10).data == Array("still here".utf8))
        #expect(log.count(.terminate) == 0)
    }
}

/// Watches a link (AF_PACKET) for SYNs to `argv[1]` and answers each with the ICMP message of
/// type `argv[2]` and code `argv[3]`, quoting the SYN's IP header and first 8 bytes, as a
/// router would.
let icmpAnswerScript = """
    import socket, struct, sys
    target, kind, code = socket.inet_aton(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    def checksum(data):
        if len(data) % 2: data += b'\\0'
        total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
        total = (total >> 16) + (total & 0xFFFF); total += total >> 16
        return ~total & 0xFFFF
    sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
    sniff.bind(('s0', 0))
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    print('READY', flush=True)
    while True:
        packet = sniff.recv(65535)
        length = (packet[0] & 0x0F) * 4
        if packet[9] != 6 or packet[16:20] != target or not packet[length + 13] & 0x02:
            continue
        quoted = packet[:length + 8]
        header = struct.pack('!BBHI', kind, code, 0, 0)
        raw.sendto(struct.pack('!BBHI', kind, code, checksum(header + quoted), 0) + quoted, (socket.inet_ntoa(packet[12:16]), 0))
    """
