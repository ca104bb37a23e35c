// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import Synchronization
import Testing

@testable import MacTCP

/// MacTCP's resolver calls against a real server (dnsmasq on loopback) and silent servers of
/// the test's own: what is done at once and what is in flight, the fields of each kind of
/// result, shared queries, close, the async and completion forms, the cache listing, the
/// Hosts file and the system files read again when they change.
@Suite(
    "DNR: MacTCP's resolver calls", .serialized, .timeLimit(.minutes(1)),
    .enabled(if: TestDNSServer.isAvailable, "needs dnsmasq (Debian's dnsmasq-base)"))
struct DNRTests {
    static func records() -> [String] {
        DNSExchangeTests.records() + [
            "--host-record=six.test,10.0.0.6,fd00::6",
            // HINFO: "x86" "Linux"; a second MX of the same preference; a null MX (RFC 7505).
            "--dns-rr=h.test,13,03783836054c696e7578", "--mx-host=mail.test,mx2.test,10", "--mx-host=mail.test,mx9.test,20",
            "--dns-rr=nomail.test,15,000000", "--ptr-record=1.0.0.10.in-addr.arpa,one.test",
            "--local=/in-addr.arpa/",
        ]
    }

    private func resolver(_ servers: [String], timeout: Duration = .seconds(2), attempts: Int = 1) -> DNR {
        let configuration = DNRConfiguration(nameServers: servers, searchDomains: ["test"], timeout: timeout, attempts: attempts)
        return DNR(files: DNRTests.noFiles, environment: [:], configuration: configuration)
    }

    /// System files that do not exist: no /etc/hosts entries, `files dns`.
    static let noFiles = DNRSystemFiles(
        resolvConf: "/nonexistent/resolv.conf", hosts: "/nonexistent/hosts", nsswitch: "/nonexistent/nsswitch")

    @Test("a dotted quad and localhost are done at once; a malformed name throws nameSyntaxErr; 127.1 is a name, not an address")
    func immediate() throws {
        let dnr = resolver([])
        let quad = try dnr.strToAddr("10.1.2.3")
        #expect(quad.isDone && quad.rtnCode == 0 && quad.addresses == [0x0A01_0203] && quad.cname == "10.1.2.3")
        let local = try dnr.strToAddr("localhost")
        #expect(local.isDone && local.addresses == [IPv4.loopback])
        #expect(throws: MacTCPError.nameSyntaxErr) { try dnr.strToAddr("bad..name") }
        #expect(throws: MacTCPError.nameSyntaxErr) { try dnr.mxInfo("na\u{EF}ve.test") }
        // No server configured and no hosts table: a name fails at once with noNameServer.
        let short = try dnr.strToAddr("127.1")
        #expect(short.isDone && short.rtnCode == MacTCPError.noNameServer.code)
        #expect(throws: MacTCPError.noNameServer) { try short.wait() }
        #expect(DNR.addrToStr(0x7F00_0001) == "127.0.0.1")
    }

    @Test("strToAddr: in flight first (cacheFault), the A records and the official name after a CNAME chain, then cached and done at once")
    func strToAddr() throws {
        let server = try TestDNSServer(Self.records())
        // Through a relay of the test's own, so that the answer can only come after the check
        // that the result is still in flight (a server on loopback may answer first otherwise).
        let relay = try UDPStream()
        defer { relay.release() }
        let dnr = resolver(["127.0.0.1:\(relay.port)"])
        let first = try dnr.strToAddr("alias")
        #expect(!first.isDone && first.cacheFault)
        let question = try relay.read(timeout: .seconds(5))
        try relay.write(host: IPv4.loopback, port: server.port, question.data)
        let answer = try relay.read(timeout: .seconds(5))
        try relay.write(host: question.remoteHost, port: question.remotePort, answer.data)
        try first.wait()
        #expect(first.isDone && first.rtnCode == 0 && first.addresses == [0x0A00_0001] && first.cname == "one.test")
        let again = try dnr.strToAddr("ALIAS.test")
        #expect(again.isDone && !again.cacheFault && again.addresses == [0x0A00_0001] && again.cname == "one.test")
        #expect(first.cacheFault, "a result keeps what its call returned")
        let missing = try resolver([server.nameServer]).strToAddr("missing.test")
        #expect(missing.rtnCode == MacTCPError.authNameErr.code && missing.addresses.isEmpty && missing.cname.isEmpty)
        #expect(throws: MacTCPError.authNameErr) { try missing.wait() }
    }

    @Test("mxInfo gives the lowest preference (one of the equals), a null MX is authNameErr; hInfo and addrToName read their records")
    func otherKinds() throws {
        let server = try TestDNSServer(Self.records())
        let dnr = resolver([server.nameServer])
        var exchanges = Set<String>()
        for _ in 0..<40 {
            let mail = try dnr.mxInfo("mail.test")
            try mail.wait()
            #expect(mail.preference == 10 && mail.cname == "mail.test")
            exchanges.insert(mail.exchange)
        }
        #expect(exchanges == ["mx1.test", "mx2.test"], "chosen: \(exchanges)")
        let none = try dnr.mxInfo("nomail.test")
        #expect(throws: MacTCPError.authNameErr) { try none.wait() }
        let info = try dnr.hInfo("h.test")
        try info.wait()
        #expect(info.cpuType == "x86" && info.osType == "Linux")
        let noInfo = try dnr.hInfo("one.test")
        #expect(noInfo.rtnCode == MacTCPError.authNameErr.code)
        let name = try dnr.addrToName(0x0A00_0001)
        try name.wait()
        #expect(name.cname == "one.test")
        let unknown = try dnr.addrToName(0x0A63_6363)
        #expect(unknown.rtnCode == MacTCPError.authNameErr.code)
    }

    @Test("query: AAAA, MX and TXT records typed, with their TTLs and master-file text")
    func query() throws {
        let server = try TestDNSServer(Self.records())
        let dnr = resolver([server.nameServer])
        let six = try dnr.query("six.test", type: .aaaa).wait()
        #expect(six.map(\.value) == [.aaaa([0xFD, 0] + [UInt8](repeating: 0, count: 13) + [6])])
        #expect(six.map(\.text) == ["fd00::6"] && six.first?.ttl == .seconds(300))
        let mail = try dnr.query("mail.test", type: .mx)
        #expect(Set(mail.records.map(\.text)) == ["10 mx1.test.", "10 mx2.test.", "20 mx9.test."])
        let big = try dnr.query("big.test", type: .txt).wait()
        guard case .txt(let strings)? = big.first?.value else {
            Issue.record("no TXT record: \(big)")
            return
        }
        #expect(strings.map { String(decoding: $0, as: UTF8.self) } == DNSExchangeTests.bigText)
        let missing = try dnr.query("missing.test", type: .aaaa)
        #expect(throws: MacTCPError.authNameErr) { try missing.wait() }
        #expect(missing.records.isEmpty && missing.rtnCode == MacTCPError.authNameErr.code)
    }

    @Test("enumCache lists what was cached: type, TTL left, data in master-file text")
    func enumCache() throws {
        let server = try TestDNSServer(Self.records())
        let dnr = resolver([server.nameServer])
        #expect(dnr.enumCache().isEmpty)
        try dnr.strToAddr("alias.test").wait()
        let listed = dnr.enumCache()
        #expect(
            listed.map { "\($0.name) \($0.type) \($0.data)" } == [
                "alias.test CNAME hop.test.", "hop.test CNAME one.test.", "one.test A 10.0.0.1",
            ])
        #expect(listed.allSatisfy { $0.ttlLeft <= .seconds(300) && $0.ttlLeft > .seconds(290) && !$0.isNegative && !$0.fromHostsFile })
    }

    @Test("identical queries in flight share one packet; close ends every pending query at once with notOpenErr, later calls throw it")
    func sharedAndClosed() throws {
        let silent = try UDPStream()
        defer { silent.release() }
        let dnr = resolver(["127.0.0.1:\(silent.port)"], timeout: .seconds(5))
        let results = try (0..<5).map { _ in try dnr.strToAddr("one.test") }
        let other = try dnr.strToAddr("two.test")
        var names: [String] = []
        while let datagram = try? silent.read(timeout: .milliseconds(500)) {
            let message = try DNSMessage(decoding: datagram.data)
            names.append(message.questions.first?.name.description ?? "?")
        }
        #expect(names.sorted() == ["one.test", "two.test"], "asked: \(names)")
        #expect(results.allSatisfy { !$0.isDone })
        let start = Clock.now
        dnr.close()
        #expect((results + [other]).allSatisfy { $0.isDone && $0.rtnCode == MacTCPError.notOpenErr.code })
        #expect(throws: MacTCPError.notOpenErr) { try results[0].wait() }
        #expect(Clock.now - start < 1)
        #expect(throws: MacTCPError.notOpenErr) { try dnr.strToAddr("one.test") }
        #expect(throws: MacTCPError.notOpenErr) { try dnr.strToAddr("10.0.0.1") }
        #expect(throws: MacTCPError.notOpenErr) { try dnr.query("one.test", type: .a) }
    }

    @Test("300 queries in flight at once: every question reaches the server before the first times out (none waits for a thread)")
    func manyInFlight() throws {
        let count = 300
        let silent = try UDPStream(receiveBufferSize: 4 << 20)
        defer { silent.release() }
        let dnr = resolver(["127.0.0.1:\(silent.port)"], timeout: .seconds(3))
        let start = Clock.now
        let results = try (0..<count).map { try dnr.strToAddr("n\($0).many.test.") }
        var asked = Set<String>()
        while asked.count < count, let datagram = try? silent.read(timeout: .milliseconds(1000)) {
            asked.insert(try DNSMessage(decoding: datagram.data).questions.first?.name.description ?? "?")
        }
        // Every question asked before the first timeout: with a thread per question in flight
        // (16 of them, as once) only 16 would have been.
        #expect(asked.count == count, "\(asked.count) of \(count) questions reached the server")
        #expect(results.allSatisfy { !$0.isDone })
        try waitUntil(timeout: 8, "every query's timeout") { results.allSatisfy(\.isDone) }
        #expect(results.allSatisfy { $0.rtnCode == MacTCPError.noAnsErr.code })
        #expect(Clock.now - start >= 2.9)
    }

    @Test("a completion that blocks delays no other query: onDone runs off the thread that reads the answers")
    func slowCompletion() throws {
        let server = try TestDNSServer(Self.records())
        let dnr = resolver(["127.0.0.1:\(server.port)"])
        let first = try dnr.strToAddr("one.test.")
        let entered = DispatchSemaphore(value: 0)
        first.onDone { _ in
            entered.signal()
            usleep(1_500_000)
        }
        #expect(entered.wait(timeout: .now() + 5) == .success)
        let start = Clock.now
        let second = try dnr.strToAddr("six.test.")
        try second.wait()
        #expect(second.addresses == [0x0A00_0006])
        #expect(Clock.now - start < 0.7, "the second answer waited for the first completion")
    }

    @Test("a cancelled await leaves the query and the other waiters running; onDone runs once, on a library thread, or at once when done")
    func asyncAndCompletion() async throws {
        let server = try TestDNSServer(Self.records())
        let silent = try UDPStream()
        defer { silent.release() }
        let slow = resolver(["127.0.0.1:\(silent.port)"], timeout: .seconds(5))
        let pending = try slow.strToAddr("one.test")
        let waiter = Task { try await pending.wait() }
        let cancelled = Task { try await pending.wait() }
        try await Task.sleep(for: .milliseconds(100))
        cancelled.cancel()
        await #expect(throws: CancellationError.self) { try await cancelled.value }
        #expect(!pending.isDone)
        slow.close()
        await #expect(throws: MacTCPError.notOpenErr) { try await waiter.value }

        // The answer is relayed by the test through a server address of its own, so that it
        // comes only after onDone is set: onDone must then run on the thread that reads it.
        let relay = try UDPStream()
        defer { relay.release() }
        let dnr = resolver(["127.0.0.1:\(relay.port)"])
        let result = try dnr.strToAddr("many.test")
        let calls = Mutex<[String]>([])
        let starter = pthread_self()
        result.onDone { done in
            let onCaller = pthread_equal(pthread_self(), starter) != 0
            calls.withLock { $0.append("\(IPv4.string(done.addresses.first ?? 0)) \(onCaller ? "caller" : "library")") }
        }
        #expect(!result.isDone && calls.withLock { $0.isEmpty })
        let question = try relay.read(timeout: .seconds(5))
        try relay.write(host: IPv4.loopback, port: server.port, question.data)
        let answer = try relay.read(timeout: .seconds(5))
        try relay.write(host: question.remoteHost, port: question.remotePort, answer.data)
        try await result.wait()
        try waitUntil(timeout: 5, "the completion") { calls.withLock { !$0.isEmpty } }
        let caller = pthread_self()  // after the awaits: the thread that calls onDone now
        result.onDone { _ in calls.withLock { $0.append("again \(pthread_equal(pthread_self(), caller) != 0 ? "caller" : "library")") } }
        #expect(calls.withLock { $0 } == ["10.0.0.2 library", "again caller"])
    }

    @Test("MacTCP's Hosts file: answers at once from the file (its TTL shown), NS lines route a domain to its server, bad lines listed")
    func hostsFile() throws {
        let delegated = try TestDNSServer(["--host-record=www.sub.test,10.7.7.7"], address: .v4(0x7F00_0002), fixedPort: 53)
        let path = NSTemporaryDirectory() + "/mactcp-hosts-\(getpid())"
        defer { unlink(path) }
        let text = """
            ; MacTCP Hosts file
            $ORIGIN test.
            $TTL 600
            one        A      10.1.1.1
                       A      10.1.1.2
            www  3600  CNAME  one
            sub        NS     ns.sub
            ns.sub     A      127.0.0.2
            broken     A      300.1.1.1
            """
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let dnr = try DNR(hostsFile: path, configuration: DNRConfiguration(nameServers: [], searchDomains: ["test"]))
        #expect(dnr.hostsFileProblems.count == 1 && dnr.hostsFileProblems[0].hasPrefix("line 9:"), "\(dnr.hostsFileProblems)")
        let one = try dnr.strToAddr("one")
        #expect(one.isDone && one.addresses == [0x0A01_0101, 0x0A01_0102])
        let www = try dnr.strToAddr("www.test")
        #expect(www.isDone && www.cname == "one.test" && www.addresses == [0x0A01_0101, 0x0A01_0102])
        let listed = dnr.enumCache().filter { $0.name == "www.test" }
        #expect(
            listed.map { "\($0.type) \($0.data) \($0.ttlLeft.components.seconds) \($0.fromHostsFile)" } == ["CNAME one.test. 3600 true"])
        // Its address comes from the delegated server only (no other server is configured).
        let routed = try dnr.strToAddr("www.sub.test")
        try routed.wait()
        #expect(routed.addresses == [0x0A07_0707])
        let elsewhere = try dnr.strToAddr("other.example")
        #expect(elsewhere.rtnCode == MacTCPError.noNameServer.code)
        _ = delegated
        #expect(throws: MacTCPError.ipNoCnfgErr) { try DNR(hostsFile: "/nonexistent/Hosts") }
    }

    @Test(
        "the system's files: /etc/hosts in nsswitch order, and resolv.conf read again when it changes (the cache flushed with new servers)")
    func systemFiles() throws {
        // resolv.conf names servers by address only (port 53), as glibc reads it.
        let first = try TestDNSServer(["--host-record=one.test,10.0.0.1"], address: .v4(0x7F00_0003), fixedPort: 53)
        let second = try TestDNSServer(["--host-record=one.test,10.0.0.99"], address: .v4(0x7F00_0004), fixedPort: 53)
        let base = NSTemporaryDirectory() + "/mactcp-dnr-\(getpid())"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let files = DNRSystemFiles(resolvConf: base + "/resolv.conf", hosts: base + "/hosts", nsswitch: base + "/nsswitch.conf")
        try "nameserver 127.0.0.3\nsearch test\n".write(toFile: files.resolvConf, atomically: true, encoding: .utf8)
        try "10.9.9.9 one.test pinned\nfd00::9 pinned\n".write(toFile: files.hosts, atomically: true, encoding: .utf8)
        try "hosts: dns files\n".write(toFile: files.nsswitch, atomically: true, encoding: .utf8)
        let dnr = DNR(files: files, environment: [:], configuration: nil)
        #expect(dnr.configuration.nameServers == ["127.0.0.3"] && dnr.configuration.searchDomains == ["test"])
        // DNS first: the server's address, not the hosts file's; a name only in the file still answers.
        let one = try dnr.strToAddr("one")
        try one.wait()
        #expect(one.addresses == [0x0A00_0001])
        #expect(try dnr.strToAddr("pinned").addresses == [0x0A09_0909])
        #expect(try dnr.query("pinned", type: .aaaa).wait().map(\.text) == ["fd00::9"])
        // The resolver sees the new server within 5 s of the change (plus a margin), and the
        // cached answer from the old server is gone.
        try "nameserver 127.0.0.4\nsearch test\n".write(toFile: files.resolvConf, atomically: true, encoding: .utf8)
        try waitUntil(timeout: 8, "the new configuration") {
            (try? dnr.strToAddr("one.test"))?.addresses == [0x0A00_0063]
        }
        #expect(dnr.configuration.nameServers == ["127.0.0.4"])
        _ = (first, second)
    }
}

/// The resolver over IPv6 and for both families: a name server on `::1`, `addresses(for:)`
/// with its resolution delay, and an await cancelled before it starts.
@Suite(
    "DNR: IPv6 servers and both families", .serialized, .timeLimit(.minutes(1)),
    .enabled(if: TestDNSServer.isAvailable, "needs dnsmasq (Debian's dnsmasq-base)"))
struct DNRFamilyTests {
    private func resolver(_ servers: [String], timeout: Duration = .seconds(2)) -> DNR {
        let configuration = DNRConfiguration(nameServers: servers, searchDomains: ["test"], timeout: timeout, attempts: 1)
        return DNR(files: DNRTests.noFiles, environment: [:], configuration: configuration)
    }

    @Test("a name server on ::1 is asked over IPv6, by [v6]:port")
    func ipv6Server() throws {
        let server = try TestDNSServer(DNRTests.records(), address: .v6(.loopback))
        #expect(server.nameServer.hasPrefix("[::1]:"))
        let dnr = resolver([server.nameServer])
        let result = try dnr.strToAddr("one.test")
        try result.wait()
        #expect(result.addresses == [0x0A00_0001])
        let missing = try resolver([server.nameServer]).strToAddr("missing.test")
        #expect(missing.rtnCode == MacTCPError.authNameErr.code)
    }

    @Test("addresses(for:): both families, IPv4 before a ULA (RFC 6724 precedence); literals as they are; no record at all is authNameErr")
    func bothFamilies() async throws {
        let server = try TestDNSServer(DNRTests.records())
        let dnr = resolver([server.nameServer])
        let six = try await dnr.addresses(for: "six.test")
        #expect(six == [.v4(0x0A00_0006), IPAddress("fd00::6")!], "\(six)")
        #expect(try await dnr.addresses(for: "one.test") == [.v4(0x0A00_0001)])
        #expect(try await dnr.addresses(for: "::1") == [.v6(.loopback)])
        #expect(try await dnr.addresses(for: "10.9.8.7") == [.v4(0x0A09_0807)])
        await #expect(throws: MacTCPError.authNameErr) { try await dnr.addresses(for: "missing.test") }
        await #expect(throws: MacTCPError.nameSyntaxErr) { try await dnr.addresses(for: "bad..name") }
    }

    @Test("a lagging AAAA is given up 50 ms after the A answer (RFC 8305); a lone AAAA answer is waited for")
    func resolutionDelay() async throws {
        let slow = try ChildProcess("python3", ["-c", Self.lagServer, "3.0"])
        defer { slow.send(SIGTERM) }
        let port = try slow.announcedPort()
        let dnr = resolver(["127.0.0.1:\(port)"], timeout: .seconds(8))
        // The AAAA answer (2001:db8::7) comes 3 s after the A answer: had it been waited for,
        // it would be in the result.
        let found = try await dnr.addresses(for: "lag.test")
        #expect(found == [.v4(0x0A06_0606)], "\(found)")
        // Only AAAA exists: the A answer (no data) comes first and does not start the delay.
        #expect(try await dnr.addresses(for: "only6.test") == [IPAddress("2001:db8::6")!])
    }

    @Test("an await whose task is cancelled before it starts throws CancellationError at once; the query goes on")
    func cancelledBeforeWaiting() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let silent = try UDPStream()
            defer { silent.release() }
            let dnr = resolver(["127.0.0.1:\(silent.port)"], timeout: .seconds(5))
            let pending = try dnr.strToAddr("one.test")
            let start = ContinuousClock.now
            // On the tests' executor: the blocking suites hold the cooperative pool, and the task
            // would start only when they let go (seen: 4 s).
            let early = Task(executorPreference: TestExecutor.shared) {
                withUnsafeCurrentTask { $0?.cancel() }
                try await pending.wait()
            }
            await #expect(throws: CancellationError.self) { try await early.value }
            #expect(ContinuousClock.now - start < .seconds(2) && !pending.isDone)
            dnr.close()
        }
    }

    /// Answers A for `lag.test` at once (10.6.6.6) and its AAAA (2001:db8::7) after the
    /// seconds given;
    /// for `only6.test`, no A data (NOERROR, empty, SOA-less) at once and AAAA 2001:db8::6
    /// after the seconds given.
    static let lagServer = """
        import socket, struct, sys, threading, time
        delay = float(sys.argv[1])
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); server.bind(('127.0.0.1', 0))
        print('PORT', server.getsockname()[1], flush=True)
        def reply(data, peer, wait):
            time.sleep(wait)
            end = data.index(0, 12) + 5
            question = data[12:end]
            qtype = struct.unpack('!H', data[end - 4:end - 2])[0]
            name = data[12:end - 4]
            answers = b''
            count = 0
            if name.startswith(b'\\x03lag') and qtype == 1:
                answers = struct.pack('!HHHIH', 0xC00C, 1, 1, 60, 4) + bytes([10, 6, 6, 6]); count = 1
            if name.startswith(b'\\x03lag') and qtype == 28:
                address = bytes([0x20, 1, 0x0d, 0xb8] + [0] * 11 + [7])
                answers = struct.pack('!HHHIH', 0xC00C, 28, 1, 60, 16) + address; count = 1
            if name.startswith(b'\\x05only6') and qtype == 28:
                address = bytes([0x20, 1, 0x0d, 0xb8] + [0] * 11 + [6])
                answers = struct.pack('!HHHIH', 0xC00C, 28, 1, 60, 16) + address; count = 1
            server.sendto(data[:2] + struct.pack('!HHHHH', 0x8180, 1, count, 0, 0) + question + answers, peer)
        while True:
            data, peer = server.recvfrom(4096)
            end = data.index(0, 12) + 5
            qtype = struct.unpack('!H', data[end - 4:end - 2])[0]
            slow = (data[12:16] == b'\\x03lag' and qtype == 28) or (data[12:18] == b'\\x05only6' and qtype == 28)
            threading.Thread(target=reply, args=(data, peer, delay if slow else 0), daemon=True).start()
        """
}
