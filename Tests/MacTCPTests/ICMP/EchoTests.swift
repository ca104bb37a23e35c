// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import MacTCP
import Synchronization
import Testing

/// ICMP echo (`MacTCPDriver.echoICMP`, MacTCP's `IPCtlEchoICMP`) on loopback and through the
/// network lab's router: replies of both families, the data and the time to live, errors with
/// their type and code, the timeout, concurrent echoes, bad arguments.
@Suite("ICMP echo", .timeLimit(.minutes(1)))
struct EchoTests {
    @Test("an echo to 127.0.0.1 and to ::1: the data comes back, with the time to live and the round trip")
    func loopback() throws {
        for address in [IPAddress.v4(IPv4.loopback), .v6(.loopback)] {
            let data = Array("echo to \(address)".utf8)
            let reply = try MacDriverEcho.blocking(address, data: data)
            #expect(reply.echoedData == data && reply.from == address, "\(address)")
            #expect(reply.timeToLive == 64, "\(address)")
            #expect(reply.requestSent < reply.replyReceived && reply.roundTrip < .seconds(1), "\(address)")
        }
        let standard = try MacDriverEcho.blocking(.v4(IPv4.loopback), data: MacTCPDriver.defaultEchoData)
        #expect(standard.echoedData.count == 56 && standard.description.hasPrefix("64 bytes from 127.0.0.1: icmp_seq="))
    }

    @Test("the largest echoes of each family come back whole; one byte more is invalidLength")
    func sizes() throws {
        let four = [UInt8](repeating: 0x5A, count: 65_507)
        #expect(try MacDriverEcho.blocking(.v4(IPv4.loopback), data: four).echoedData == four)
        let six = [UInt8](repeating: 0xA5, count: 65_527)
        #expect(try MacDriverEcho.blocking(.v6(.loopback), data: six).echoedData == six)
        #expect(try MacDriverEcho.blocking(.v6(.loopback), data: []).echoedData.isEmpty)
        expectMacTCPError(.invalidLength) { _ = try MacDriverEcho.blocking(.v4(IPv4.loopback), data: four + [0]) }
        expectMacTCPError(.invalidLength) { _ = try MacDriverEcho.blocking(.v6(.loopback), data: six + [0]) }
    }

    @Test("bad arguments: 0.0.0.0, ::, a link-local address without its interface, no timeout, a time to live above 255")
    func badArguments() {
        expectMacTCPError(.ipBadAddr) { _ = try MacTCPDriver.echoICMP(to: .v4(0), timeout: .seconds(1)) }
        expectMacTCPError(.ipBadAddr) { _ = try MacTCPDriver.echoICMP(to: IPAddress("::")!, timeout: .seconds(1)) }
        expectMacTCPError(.ipBadAddr) { _ = try MacTCPDriver.echoICMP(to: IPAddress("fe80::1")!, timeout: .seconds(1)) }
        expectMacTCPError(.invalidLength) { _ = try MacTCPDriver.echoICMP(to: .v6(.loopback), timeout: .zero) }
        expectMacTCPError(.invalidLength) { _ = try MacTCPDriver.echoICMP(to: .v6(.loopback), timeout: .seconds(1), timeToLive: 256) }
    }

    @Test("100 concurrent echoes to one host, async: each gets its own reply, none crossed")
    func concurrent() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            for address in [IPAddress.v6(.loopback), .v4(IPv4.loopback)] {
                try await withThrowingTaskGroup(of: Bool.self) { group in
                    for index in 0..<100 {
                        group.addTask {
                            let data = Array("echo \(index) of 100".utf8)
                            let reply = try await MacTCPDriver.echoICMP(to: address, data: data, timeout: .seconds(5))
                            return reply.echoedData == data && reply.from == address
                        }
                    }
                    var matched = 0
                    for try await ok in group where ok { matched += 1 }
                    #expect(matched == 100, "\(address)")
                }
            }
        }
    }

    @Test("an async echo whose task is cancelled ends at once with CancellationError")
    func cancelled() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            // The documentation address block answers nothing: the echo would wait its 10 s.
            let lab = try NetworkLab()
            defer { lab.tearDown() }
            let start = ContinuousClock.now
            let echo = Task(executorPreference: TestExecutor.shared) {
                try await MacTCPDriver.echoICMP(to: .v4(0x0AD5_0701), timeout: .seconds(10))
            }
            await TestExecutor.sleep(for: .milliseconds(100))
            echo.cancel()
            await #expect(throws: CancellationError.self) { _ = try await echo.value }
            #expect(ContinuousClock.now - start < .seconds(5))
        }
    }
}

/// The blocking echo with a 5 s timeout (a synchronous function: an async test would call
/// the async form).
enum MacDriverEcho {
    static func blocking(_ address: IPAddress, data: [UInt8], timeout: Duration = .seconds(5), timeToLive: Int = 0) throws
        -> ICMPEchoReply
    {
        try MacTCPDriver.echoICMP(to: address, data: data, timeout: timeout, timeToLive: timeToLive)
    }
}

/// Echoes through the lab's router: a host that answers, one that drops everything, ICMP
/// errors of each kind with their type and code, and time exceeded for a time to live of 1.
@Suite("ICMP echo through a router", .serialized, .timeLimit(.minutes(1)), .enabled(if: NetworkLab.isAvailable, "needs root and iproute2"))
struct EchoRouterTests {
    @Test("the router answers, IPv4 and IPv6; a host that drops echoes is icmpEchoTimeoutErr within 20 % of the timeout")
    func answeredAndDropped() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        #expect(try MacDriverEcho.blocking(.v4(0x0AD5_01FE), data: [1, 2, 3]).timeToLive == 64)
        #expect(try MacDriverEcho.blocking(NetworkLab.routerAddress6, data: [4, 5, 6]).from == NetworkLab.routerAddress6)
        let start = ContinuousClock.now
        expectMacTCPError(.icmpEchoTimeoutErr) { _ = try MacDriverEcho.blocking(.v4(0x0AD5_0701), data: [7], timeout: .seconds(1)) }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .seconds(1) && elapsed < .seconds(1.2), "\(elapsed)")
    }

    @Test(
        "ICMP errors end an echo with MacTCP's code, the type and code kept",
        arguments: [
            (0x0AD5_0905 as UInt32, 0, MacTCPError.ipDestDeadErr, UInt8(3), UInt8(1)),  // host unreachable
            (0x0AD6_0005 as UInt32, 0, MacTCPError.ipRouteErr, UInt8(3), UInt8(0)),  // net unreachable
            (0x0AD5_0805 as UInt32, 0, MacTCPError.ipDestDeadErr, UInt8(3), UInt8(13)),  // administratively prohibited
            (0x0AD5_0201 as UInt32, 1, MacTCPError.ipDestDeadErr, UInt8(11), UInt8(0)),  // TTL 1: time exceeded at the router
        ] as [(UInt32, Int, MacTCPError, UInt8, UInt8)])
    func errors(address: UInt32, timeToLive: Int, expected: MacTCPError, type: UInt8, code: UInt8) throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        try lab.inRouter("sysctl -qw net.ipv4.icmp_ratelimit=0")
        do {
            _ = try MacDriverEcho.blocking(.v4(address), data: [1], timeout: .seconds(3), timeToLive: timeToLive)
            Issue.record("an answer from \(IPv4.string(address))")
        } catch let error as MacTCPError {
            #expect(error == expected, "\(error)")
            #expect(error.icmp == ICMPTypeAndCode(type: type, code: code, isICMPv6: false), "\(error)")
            #expect(error.description.contains("from 10.213.1.254"), "\(error)")
        }
    }
}

extension EchoRouterTests {
    @Test("an IPv6 neighbour that is never found: ICMPv6 address unreachable (1/3), ipDestDeadErr, the type and code kept")
    func neighbourNotFound() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        do {
            _ = try MacDriverEcho.blocking(IPAddress("fd00:213:1::99")!, data: [1], timeout: .seconds(8))
            Issue.record("an answer from nobody")
        } catch let error as MacTCPError {
            #expect(error == .ipDestDeadErr, "\(error)")
            #expect(error.icmp == ICMPTypeAndCode(type: 1, code: 3, isICMPv6: true), "\(error)")
            #expect(error.description.contains("address unreachable (ICMPv6 type 1, code 3)"), "\(error)")
        }
    }
}

extension EchoRouterTests {
    @Test("mactcp ping: replies and iputils' summary, JSON lines, exit 75 when nothing answers, 69 for ICMP errors")
    func tool() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        try lab.inRouter("sysctl -qw net.ipv4.icmp_ratelimit=0")
        let (status, out, err) = try Tool.start(["ping", "-c", "3", "-i", "0.1", "::1"]).finish()
        #expect(status == 0, "\(err)")
        #expect(out.hasPrefix("PING ::1 (::1) 56 data bytes\n64 bytes from ::1: icmp_seq=1 ttl=64 time="), "\(out)")
        #expect(out.contains("--- ::1 ping statistics ---\n3 packets transmitted, 3 received, 0% packet loss"), "\(out)")
        #expect(out.contains("rtt min/avg/max/mdev = "), "\(out)")
        let json = try Tool.start(["ping", "-c", "2", "-i", "0.1", "-s", "100", "--json", "127.0.0.1"]).finish()
        let lines = json.out.split(separator: "\n").map { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(json.status == 0 && lines.count == 3 && lines.allSatisfy { $0 != nil }, "\(json.out)")
        #expect(lines.first??["bytes"] as? Int == 108 && lines.last??["received"] as? Int == 2, "\(json.out)")
        let silent = try Tool.start(["ping", "-c", "2", "-i", "0.1", "-W", "0.3", "10.213.7.1"]).finish()
        #expect(silent.status == 75 && silent.out.contains("2 packets transmitted, 0 received, 100% packet loss"), "\(silent.out)")
        let refused = try Tool.start(["ping", "-c", "1", "10.213.9.1"]).finish()
        #expect(refused.status == 69 && refused.out.contains("host unreachable (type 3, code 1)"), "\(refused.out)")
        #expect(refused.out.contains("1 packets transmitted, 0 received, +1 errors, 100% packet loss"), "\(refused.out)")
    }
}

extension EchoRouterTests {
    /// In the router's namespace, with the kernel's own echo replies off: answers each echo
    /// request first with the same identifier and sequence but other data, then rightly.
    static let forger = """
        import socket, struct, sys
        def checksum(data):
            if len(data) % 2: data += b'\\0'
            total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
            while total >> 16: total = (total & 0xFFFF) + (total >> 16)
            return ~total & 0xFFFF
        def reply(ident, seq, payload):
            header = struct.pack('!BBHHH', 0, 0, 0, ident, seq)
            return struct.pack('!BBHHH', 0, 0, checksum(header + payload), ident, seq) + payload
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        print('READY', flush=True)
        while True:
            packet, (source, _) = raw.recvfrom(70000)
            icmp = packet[(packet[0] & 15) * 4:]
            kind, _, _, ident, seq = struct.unpack('!BBHHH', icmp[:8])
            if kind != 8: continue
            payload = icmp[8:]
            raw.sendto(reply(ident, seq, payload[::-1] + b'x'), (source, 0))
            raw.sendto(reply(ident, seq, bytes(b ^ 0xFF for b in payload)), (source, 0))
            raw.sendto(reply(ident, seq, payload), (source, 0))
        """

    @Test("replies with this echo's identifier and sequence but other data are not taken; the right one is")
    func forgedData() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        try lab.inRouter("sysctl -qw net.ipv4.icmp_echo_ignore_all=1")
        let forger = try ChildProcess("ip", ["netns", "exec", lab.router, "python3", "-c", Self.forger])
        defer { forger.send(SIGTERM) }
        try waitUntil(timeout: 10, "the forger") { forger.output.contains("READY\n") }
        let data = Array("the real data".utf8)
        let reply = try MacDriverEcho.blocking(.v4(0x0AD5_01FE), data: data, timeout: .seconds(3))
        #expect(reply.echoedData == data)
    }
}

/// The unprivileged path: `mactcp ping` as `nobody` in a network namespace of the test's own,
/// with `net.ipv4.ping_group_range` set there (never on the machine).
@Suite(
    "ICMP echo without privilege", .serialized, .timeLimit(.minutes(1)),
    .enabled(if: NetworkLab.isAvailable && OtherUser.isAvailable, "needs root, iproute2 and setpriv"))
struct EchoUnprivilegedTests {
    @Test("ping_group_range 0 2147483647: echo through an ICMP datagram socket; 1 0: the error names the sysctl, exit 77")
    func datagramSockets() throws {
        let namespace = "mtping\(getpid() % 100_000)"
        // The tool is copied where nobody may run it (the build directory may be private).
        let directory = "/tmp/mactcp-ping-\(getpid())"
        defer { _ = try? shell("ip netns del \(namespace) 2>/dev/null; rm -rf \(directory); true") }
        _ = try shell(
            """
            ip netns add \(namespace); ip -n \(namespace) link set lo up
            mkdir -m 755 \(directory) && cp '\(Tool.path)' \(directory)/mactcp && chmod 755 \(directory)/mactcp
            ip netns exec \(namespace) sysctl -qw net.ipv4.ping_group_range='0 2147483647'
            """)
        func ping(_ host: String) throws -> (Int32, String, String) {
            let child = try ChildProcess(
                "ip",
                [
                    "netns", "exec", namespace, "setpriv", "--reuid", "nobody", "--regid", "nogroup", "--clear-groups",
                    "\(directory)/mactcp", "ping", "-c", "2", "-i", "0.1", host,
                ])
            return try child.finish()
        }
        for host in ["127.0.0.1", "::1"] {
            let (status, out, err) = try ping(host)
            #expect(status == 0 && out.contains("2 packets transmitted, 2 received, 0% packet loss"), "\(host): \(out) \(err)")
        }
        _ = try shell("ip netns exec \(namespace) sysctl -qw net.ipv4.ping_group_range='1 0'")
        let (status, _, err) = try ping("127.0.0.1")
        #expect(status == 77, "\(err)")
        #expect(err.contains("net.ipv4.ping_group_range") && err.contains("(now \"1 0\""), "\(err)")
    }
}
