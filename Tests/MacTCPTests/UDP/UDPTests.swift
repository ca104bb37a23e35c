// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import MacTCP
import Synchronization
import Testing

@Suite("UDP streams", .timeLimit(.minutes(1)))
struct UDPTests {
    @Test("port 0 gets a real port; a port in use is duplicateSocket; a small buffer is invalidLength")
    func create() throws {
        let stream = try UDPStream()
        #expect(stream.port != 0)
        expectMacTCPError(.duplicateSocket) { _ = try UDPStream(port: stream.port) }
        expectMacTCPError(.invalidLength) { _ = try UDPStream(receiveBufferSize: 2047) }
        let chosen = try UDPPeer()
        let port = chosen.port
        _ = consume chosen
        let fixed = try UDPStream(receiveBufferSize: 2048, port: port)
        #expect(fixed.port == port)
    }

    @Test(
        "datagrams of 0, 1, 1472, 40000 and 65507 bytes both ways, with the sender's host and port; each read holds at most twice its size",
        arguments: [0, 1, 1472, 40000, 65507])
    func sizes(size: Int) throws {
        let stream = try UDPStream(receiveBufferSize: 262_144)
        let peer = try UDPPeer()
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        try peer.send(payload, to: stream.port)
        let datagram = try stream.read(timeout: .seconds(5))
        #expect(datagram == UDPDatagram(data: payload, remoteHost: IPv4.loopback, remotePort: peer.port))
        // Not 64 KiB for every datagram: a kept datagram holds about its own size.
        #expect(datagram.data.capacity <= max(2 * size, 64), "\(size) bytes held in an array of \(datagram.data.capacity)")
        try stream.write(host: IPv4.loopback, port: peer.port, payload)
        let back = try peer.receive()
        #expect(back.data == payload)
        #expect(back.port == stream.port)
    }

    @Test("too large, host 0 and port 0 are refused with their codes")
    func badWrites() throws {
        let stream = try UDPStream()
        expectMacTCPError(.invalidLength) { try stream.write(host: IPv4.loopback, port: 9, [UInt8](repeating: 0, count: 65508)) }
        expectMacTCPError(.ipBadAddr) { try stream.write(host: 0, port: 9, [1]) }
        expectMacTCPError(.ipBadAddr) { try stream.write(host: IPv4.loopback, port: 0, [1]) }
        expectMacTCPError(.ipBadAddr) { _ = try stream.maxMTUSize(remoteHost: 0) }
    }

    @Test("read times out with commandTimeout; zero waits without limit; Double timeouts are checked")
    func timeouts() throws {
        let stream = try UDPStream()
        let start = Clock.now
        expectMacTCPError(.commandTimeout) { _ = try stream.read(timeout: .milliseconds(150)) }
        #expect(Clock.now - start >= 0.14)
        expectMacTCPError(.commandTimeout) { _ = try stream.read(timeout: 0.05) }
        expectMacTCPError(.invalidLength) { _ = try stream.read(timeout: -1) }
        // The message speaks of the seconds given, not of a Duration made of them.
        do {
            _ = try stream.read(timeout: -1.5)
        } catch let error as MacTCPError {
            #expect(error.detail?.contains("finite number of seconds") == true && error.detail?.contains("-1.5") == true, "\(error)")
        }
        expectMacTCPError(.invalidLength) { _ = try stream.read(timeout: .nan) }
        let waiting = Background { try stream.read(timeout: .zero) }
        usleep(200_000)
        #expect(!waiting.isFinished)
        let peer = try UDPPeer()
        try peer.send([42], to: stream.port)
        #expect(try waiting.value().get().data == [42])
    }

    @Test("release wakes a blocked read with connectionTerminated; later calls are invalidStreamPtr")
    func release() throws {
        let stream = try UDPStream()
        let waiting = Background { try stream.read(timeout: 10) }
        usleep(100_000)
        stream.release()
        #expect(throws: MacTCPError.connectionTerminated) { try waiting.value().get() }
        expectMacTCPError(.invalidStreamPtr) { _ = try stream.read(timeout: 1) }
        expectMacTCPError(.invalidStreamPtr) { try stream.write(host: IPv4.loopback, port: 9, [1]) }
        expectMacTCPError(.invalidStreamPtr) { _ = try stream.maxMTUSize(remoteHost: IPv4.loopback) }
        stream.release()
    }

    @Test(".dataArrival once until a read returns")
    func dataArrival() throws {
        let stream = try UDPStream()
        let events = Mutex<[UDPEvent]>([])
        stream.asr = { event, _ in events.withLock { $0.append(event) } }
        let peer = try UDPPeer()
        try peer.send([1], to: stream.port)
        try waitUntil("the event") { events.withLock { $0.count } == 1 }
        try peer.send([2], to: stream.port)
        usleep(100_000)
        #expect(events.withLock { $0 } == [.dataArrival])
        _ = try stream.read(timeout: 5)
        _ = try stream.read(timeout: 5)
        try peer.send([3], to: stream.port)
        try waitUntil("the second event") { events.withLock { $0.count } == 2 }
        stream.asr = nil
    }

    @Test("ICMP port unreachable on loopback: exact report, .icmpReceived, the stream lives on")
    func portUnreachable() throws {
        let stream = try UDPStream()
        let events = Mutex<[(UDPEvent, Int)]>([])
        stream.asr = { event, detail in events.withLock { $0.append((event, detail)) } }
        let closed = try UDPPeer()
        let closedPort = closed.port
        _ = consume closed
        try stream.write(host: IPv4.loopback, port: closedPort, Array("anyone?".utf8))
        try waitUntil("the ICMP report") { stream.lastICMPReport != nil }
        let report = try #require(stream.lastICMPReport)
        #expect(report.icmpType == 3 && report.icmpCode == 3)
        #expect(report.reportType == .portUnreach)
        #expect(report.reportingHost == IPv4.loopback)
        #expect(report.remoteHost == IPv4.loopback && report.remotePort == closedPort)
        #expect(report.localPort == stream.port)
        #expect(report.errno == ECONNREFUSED)
        try waitUntil("the event") { events.withLock { $0.contains { $0.0 == .icmpReceived } } }
        #expect(events.withLock { $0.first { $0.0 == .icmpReceived }?.1 } == ICMPMessageType.portUnreach.rawValue)
        // The error never kills the stream: writing and reading go on.
        let peer = try UDPPeer()
        try stream.write(host: IPv4.loopback, port: closedPort, [1])
        try stream.write(host: IPv4.loopback, port: peer.port, [7])
        #expect(try peer.receive().data == [7])
        try peer.send([8], to: stream.port)
        #expect(try stream.read(timeout: 5).data == [8])
        stream.asr = nil
    }

    @Test("a flood of 10,000 datagrams kept below the receive buffer's capacity loses nothing")
    func flood() throws {
        let stream = try UDPStream(receiveBufferSize: 1 << 20)
        let peer = try UDPPeer()
        let total = 10_000
        let received = Atomic(0)
        let reader = Background { () throws -> [Int] in
            var seen = [Int](repeating: 0, count: total)
            for _ in 0..<total {
                let datagram = try stream.read(timeout: 10)
                let index = Int(datagram.data[0]) << 8 | Int(datagram.data[1])
                seen[index] += 1
                received.add(1, ordering: .relaxed)
            }
            return seen
        }
        for index in 0..<total {
            // At most 256 datagrams of 100 bytes in flight: far below the 1 MiB buffer.
            while index - received.load(ordering: .relaxed) >= 256 { usleep(100) }
            var payload = [UInt8](repeating: 0xAB, count: 100)
            payload[0] = UInt8(index >> 8)
            payload[1] = UInt8(index & 0xFF)
            try peer.send(payload, to: stream.port)
        }
        let seen = try reader.value(timeout: 30).get()
        #expect(seen.allSatisfy { $0 == 1 }, "lost \(seen.filter { $0 == 0 }.count), duplicated \(seen.filter { $0 > 1 }.count)")
    }

    @Test("maxMTUSize follows the route's MTU: loopback's 65,536 allows the largest datagram")
    func maxMTU() throws {
        let stream = try UDPStream()
        #expect(try stream.maxMTUSize(remoteHost: IPv4.loopback) == 65507)
    }

    @Test("checksum: false sends datagrams without a checksum, still delivered")
    func noChecksum() throws {
        let stream = try UDPStream()
        let peer = try UDPPeer()
        try stream.write(host: IPv4.loopback, port: peer.port, [1, 2, 3], checksum: false)
        #expect(try peer.receive().data == [1, 2, 3])
        try stream.write(host: IPv4.loopback, port: peer.port, [4], checksum: true)
        #expect(try peer.receive().data == [4])
    }
}

@Suite(
    "UDP and ICMP through a router", .serialized, .timeLimit(.minutes(1)),
    .enabled(if: NetworkLab.isAvailable, "needs root and iproute2 for network namespaces"))
struct UDPRouterTests {
    @Test(
        "host and net unreachable from a router: type, code, the router and the original destination",
        arguments: [
            (0x0AD5_0905 as UInt32, UInt8(1), ICMPMessageType.hostUnreach),
            (0x0AD6_0005 as UInt32, UInt8(0), ICMPMessageType.netUnreach),
            (0x0AD5_0805 as UInt32, UInt8(13), ICMPMessageType.hostUnreach),
        ])
    func unreachable(destination: UInt32, code: UInt8, type: ICMPMessageType) throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let stream = try UDPStream()
        try stream.write(host: destination, port: 4000, Array("hello?".utf8))
        try waitUntil("the ICMP report") { stream.lastICMPReport != nil }
        // The stream survives: it can still send.
        try stream.write(host: destination, port: 4000, [1])
        let received = try #require(stream.lastICMPReport)
        #expect(received.icmpType == 3)
        #expect(received.icmpCode == code)
        #expect(received.reportType == type)
        #expect(received.reportingHost == 0x0AD5_01FE)
        #expect(received.remoteHost == destination && received.remotePort == 4000)
    }

    @Test("in a network namespace with no route at all, write and maxMTUSize are ipRouteErr")
    func noRoute() throws {
        _ = try UDPStream()  // the library's threads start here, outside the namespace
        let namespace = "mtnoroute\(getpid())"
        try shell("ip netns add \(namespace)")
        defer { _ = try? shell("ip netns del \(namespace)") }
        let errors = try inNamespace(namespace) { () throws -> [Int] in
            let stream = try UDPStream()
            defer { stream.release() }
            var codes: [Int] = []
            for attempt in [
                { try stream.write(host: 0x0AD5_0909, port: 4000, [1]) }, { _ = try stream.maxMTUSize(remoteHost: 0x0AD5_0909) },
            ] {
                do {
                    try attempt()
                    codes.append(0)
                } catch let error as MacTCPError {
                    codes.append(error.code)
                }
            }
            return codes
        }
        #expect(errors == [MacTCPError.ipRouteErr.code, MacTCPError.ipRouteErr.code])
    }

    @Test("maxMTUSize follows a smaller path MTU")
    func pathMTU() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        try shell("ip link set \(NetworkLab.interface) mtu 1280")
        let size = try UDPStream().maxMTUSize(remoteHost: NetworkLab.serverAddress)
        #expect(size == 1280 - 28)
    }
}

@Suite("Driver-wide information")
struct DriverTests {
    /// The output of a shell command, without surrounding white space.
    static func shell(_ command: String) throws -> String {
        try MacTCPTests.shell(command).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("address, netmask and MTU are those of the default-route interface, as `ip` shows them")
    func interface() throws {
        let name = try Self.shell("ip -4 route show default | awk '{for(i=1;i<=NF;i++) if($i==\"dev\") print $(i+1)}' | head -1")
        guard !name.isEmpty else {
            // No default route: the first interface that is up and not loopback, else lo.
            #expect(MacTCPDriver.interfaceName() != nil)
            return
        }
        #expect(MacTCPDriver.interfaceName() == name)
        let cidr = try Self.shell("ip -4 -o addr show dev \(name) | awk '{print $4}' | head -1")
        let parts = cidr.split(separator: "/")
        #expect(MacTCPDriver.ipAddr() == IPv4.address(String(parts[0])))
        let prefix = UInt32(parts[1])!
        #expect(MacTCPDriver.netMask() == (prefix == 0 ? 0 : ~UInt32(0) << (32 - prefix)))
        let mtu = Int(try Self.shell("cat /sys/class/net/\(name)/mtu"))!
        #expect(MacTCPDriver.interfaceMTU() == mtu)
        #expect(MacTCPDriver.mtu() == min(mtu - 28, 65507))
    }

    @Test("global TCP parameters and counters come from the kernel and move with our connections")
    func globalInfo() throws {
        let before = try MacTCPDriver.globalInfo()
        #expect(before.parameters.tcpRtoMin == 200)
        #expect(before.parameters.tcpRtoMax == 120_000)
        #expect(before.parameters.tcpMaxWindow == Int(try Self.shell("awk '{print $3}' /proc/sys/net/ipv4/tcp_rmem"))!)
        #expect(before.parameters.tcpMaxConn > 0)
        let pair = try activePair()
        try pair.stream.send([UInt8](repeating: 1, count: 10_000), waitForAck: true)
        let after = try MacTCPDriver.globalInfo()
        #expect(after.statistics.tcpConnAttempts >= before.statistics.tcpConnAttempts + 1)
        #expect(after.statistics.tcpConnAccepted >= before.statistics.tcpConnAccepted + 1)
        #expect(after.statistics.tcpOutputPkts > before.statistics.tcpOutputPkts)
        #expect(after.statistics.tcpInputPkts > before.statistics.tcpInputPkts)
        #expect(after.statistics.tcpOctetsOut >= before.statistics.tcpOctetsOut + 10_000)
        #expect(after.statistics.tcpOctetsInDup == nil)
        let snmp = try Self.shell("awk '/^Tcp:/ {n++} /^Tcp:/ && n==2 {print $6}' /proc/net/snmp")
        #expect(Int(snmp)! >= after.statistics.tcpConnAttempts)
        // Each counter is the kernel's own: between two readings of /proc/net/snmp (other
        // tests open connections meanwhile), ActiveOpens, PassiveOpens, AttemptFails.
        func counters() throws -> [Int] {
            try Self.shell("awk '/^Tcp:/ {n++} /^Tcp:/ && n==2 {print $6, $7, $8}' /proc/net/snmp").split(separator: " ").compactMap {
                Int($0)
            }
        }
        let low = try counters()
        let info = try MacTCPDriver.globalInfo().statistics
        let high = try counters()
        #expect((low[0]...high[0]).contains(info.tcpConnAttempts))
        #expect((low[1]...high[1]).contains(info.tcpConnAccepted))
        #expect((low[0] - high[2]...high[0] - low[2]).contains(info.tcpConnOpened))
    }
}
