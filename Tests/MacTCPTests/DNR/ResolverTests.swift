// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import Testing

@testable import MacTCP

/// The resolver's engine against a real server (dnsmasq on loopback), silent and failing
/// servers of the test's own, the hosts table and the special names.
@Suite(
    "Resolver against real servers", .serialized, .timeLimit(.minutes(1)),
    .enabled(if: TestDNSServer.isAvailable, "needs dnsmasq (Debian's dnsmasq-base)"))
struct ResolverTests {
    private func configuration(_ servers: [String], timeout: Duration = .seconds(2), attempts: Int = 1) -> DNRConfiguration {
        DNRConfiguration(nameServers: servers, searchDomains: ["test"], ndots: 1, timeout: timeout, attempts: attempts)
    }

    private func address(_ outcome: Result<Resolver.Outcome, MacTCPError>) -> [DNSRecord.Data] {
        (try? outcome.get().records.filter { $0.type == .a }.map(\.data)) ?? []
    }

    @Test("a short name through the search list, a CNAME chain to its official name, NXDOMAIN as authNameErr")
    func answers() throws {
        let server = try TestDNSServer(DNSExchangeTests.records())
        let resolver = Resolver(configuration: configuration(["127.0.0.1:\(server.port)"]))
        let one = try resolver.resolve("one", type: .a, operation: "strToAddr")
        #expect(try one.get().canonicalName == "one.test" && address(one) == [.a(0x0A00_0001)])
        let alias = try resolver.resolve("alias.test.", type: .a, operation: "strToAddr").get()
        #expect(alias.canonicalName == "one.test" && alias.records.map(\.type) == [.cname, .cname, .a])
        let missing = try resolver.resolve("missing.test", type: .a, operation: "strToAddr")
        guard case .failure(let error) = missing else {
            Issue.record("missing.test resolved: \(missing)")
            return
        }
        #expect(error == .authNameErr && error.detail?.contains("missing.test") == true, "\(error)")
    }

    @Test("an answer is cached for its TTL: asked again, it comes without a packet, even with the server gone")
    func cached() throws {
        var server: TestDNSServer? = try TestDNSServer(DNSExchangeTests.records())
        let resolver = Resolver(configuration: configuration(["127.0.0.1:\(server!.port)"]))
        #expect(try !resolver.resolve("one.test", type: .a, operation: "strToAddr").get().withoutPacket)
        server = nil  // stopped
        let again = try resolver.resolve("ONE.test", type: .a, operation: "strToAddr").get()
        #expect(again.withoutPacket && again.records.map(\.data) == [.a(0x0A00_0001)])
        _ = server
    }

    @Test("a silent server: noAnsErr after timeout × attempts × servers (±20 %), naming each attempt")
    func silentServer() throws {
        let silent = try UDPStream()  // bound, never read
        defer { silent.release() }
        let resolver = Resolver(configuration: configuration(["127.0.0.1:\(silent.port)"], timeout: .milliseconds(500), attempts: 2))
        let start = Clock.now
        let outcome = try resolver.resolve("one.test", type: .a, operation: "strToAddr")
        let elapsed = Clock.now - start
        guard case .failure(let error) = outcome else {
            Issue.record("answered: \(outcome)")
            return
        }
        #expect(error == .noAnsErr, "\(error)")
        #expect(error.detail?.contains("attempt 2") == true, "\(error)")
        // 500 ms × 2 attempts × 1 server; only "no such name" would move on to the next candidate.
        #expect(elapsed >= 0.8 && elapsed <= 1.2, "took \(elapsed) s")
    }

    @Test("a server that fails (SERVFAIL) hands the question to the next one; all failing is dnrErr")
    func failingServer() throws {
        let failing = try ChildProcess("python3", ["-c", Self.servfailServer])
        defer { failing.send(SIGTERM) }
        let port = try failing.announcedPort()
        let server = try TestDNSServer(DNSExchangeTests.records())
        let resolver = Resolver(configuration: configuration(["127.0.0.1:\(port)", "127.0.0.1:\(server.port)"]))
        #expect(address(try resolver.resolve("one.test", type: .a, operation: "strToAddr")) == [.a(0x0A00_0001)])
        let alone = Resolver(configuration: configuration(["127.0.0.1:\(port)"]))
        guard case .failure(let error) = try alone.resolve("one.test", type: .a, operation: "strToAddr") else {
            Issue.record("a failing server answered")
            return
        }
        #expect(error == .dnrErr && error.detail?.contains("response code 2") == true, "\(error)")
    }

    @Test("localhost, .invalid and .onion without a packet; the hosts table first; no server at all is noNameServer")
    func withoutPackets() throws {
        let resolver = Resolver(configuration: configuration([]), hosts: ["db.test": ["10.9.9.9"]])
        let local = try resolver.resolve("db.localhost", type: .a, operation: "strToAddr").get()
        #expect(local.withoutPacket && local.records.map(\.data) == [.a(IPv4.loopback)])
        #expect(try resolver.resolve("DB", type: .a, operation: "strToAddr").get().records.map(\.data) == [.a(0x0A09_0909)])
        for name in ["x.invalid", "hidden.onion"] {
            guard case .failure(let error) = try resolver.resolve(name, type: .a, operation: "strToAddr") else {
                Issue.record("\(name) resolved")
                continue
            }
            #expect(error == .authNameErr)
        }
        guard case .failure(let error) = try resolver.resolve("www.example", type: .a, operation: "strToAddr") else {
            Issue.record("resolved without a server")
            return
        }
        #expect(error == .noNameServer)
        expectMacTCPError(.nameSyntaxErr) { _ = try resolver.resolve("a..b", type: .a, operation: "strToAddr") }
    }

    /// Answers every query with SERVFAIL.
    @Test("a FORMERR to a query with EDNS0 is asked once more without it, and answered")
    func formerrWithoutEDNS() throws {
        let old = try ChildProcess("python3", ["-c", Self.noEDNSServer])
        defer { old.send(SIGTERM) }
        let port = try old.announcedPort()
        let resolver = Resolver(configuration: configuration(["127.0.0.1:\(port)"]))
        #expect(address(try resolver.resolve("old.test", type: .a, operation: "strToAddr")) == [.a(0x0A05_0505)])
    }

    @Test("0x20: with randomizeCase the question goes out in mixed case and an answer that does not repeat it exactly is ignored")
    func caseRandomized() throws {
        let server = try TestDNSServer(DNSExchangeTests.records())
        var randomized = configuration(["127.0.0.1:\(server.port)"])
        randomized.randomizeCase = true
        #expect(address(try Resolver(configuration: randomized).resolve("one.test", type: .a, operation: "strToAddr")) == [.a(0x0A00_0001)])
        let lower = try ChildProcess("python3", ["-c", Self.lowercasingServer])
        defer { lower.send(SIGTERM) }
        let port = try lower.announcedPort()
        var strict = configuration(["127.0.0.1:\(port)"], timeout: .milliseconds(500))
        strict.randomizeCase = true
        // A 14-letter name is all lower case by chance once in 16,384 tries.
        guard case .failure(let error) = try Resolver(configuration: strict).resolve("abcdefghij.test", type: .a, operation: "strToAddr")
        else {
            Issue.record("an answer with the question in another case was taken")
            return
        }
        #expect(error == .noAnsErr, "\(error)")
        #expect(
            address(
                try Resolver(configuration: configuration(["127.0.0.1:\(port)"])).resolve(
                    "abcdefghij.test", type: .a, operation: "strToAddr")) == [.a(0x0A05_0505)])
    }

    /// A server that answers A 10.5.5.5 with the question's name in lower case.
    static let lowercasingServer = """
        import socket, struct
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); server.bind(('127.0.0.1', 0))
        print('PORT', server.getsockname()[1], flush=True)
        while True:
            data, peer = server.recvfrom(4096)
            end = data.index(0, 12) + 5
            question = data[12:end].lower()
            answer = struct.pack('!HHHIH', 0xC00C, 1, 1, 60, 4) + bytes([10, 5, 5, 5])
            server.sendto(data[:2] + struct.pack('!HHHHH', 0x8180, 1, 1, 0, 0) + question + answer, peer)
        """

    @Test("a server whose answers cannot be read (counts that lie) fails the question with dnrErr, not noAnsErr")
    func malformedAnswers() throws {
        let broken = try ChildProcess("python3", ["-c", Self.lyingServer])
        defer { broken.send(SIGTERM) }
        let port = try broken.announcedPort()
        let resolver = Resolver(configuration: configuration(["127.0.0.1:\(port)"]))
        guard case .failure(let error) = try resolver.resolve("one.test", type: .a, operation: "strToAddr") else {
            Issue.record("a broken server answered")
            return
        }
        #expect(error == .dnrErr && error.detail?.contains("malformed") == true, "\(error)")
    }

    /// A server whose answers say they hold five records and hold none.
    static let lyingServer = """
        import socket, struct
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); server.bind(('127.0.0.1', 0))
        print('PORT', server.getsockname()[1], flush=True)
        while True:
            data, peer = server.recvfrom(4096)
            end = data.index(0, 12) + 5
            server.sendto(data[:2] + struct.pack('!HHHHH', 0x8180, 1, 5, 0, 0) + data[12:end], peer)
        """

    /// A server from before EDNS0: FORMERR to a query with an additional record, an A
    /// record (10.5.5.5) otherwise.
    static let noEDNSServer = """
        import socket, struct
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); server.bind(('127.0.0.1', 0))
        print('PORT', server.getsockname()[1], flush=True)
        while True:
            data, peer = server.recvfrom(4096)
            end = data.index(0, 12) + 5
            question = data[12:end]
            if struct.unpack('!H', data[10:12])[0] > 0:
                server.sendto(data[:2] + struct.pack('!HHHHH', 0x8181, 1, 0, 0, 0) + question, peer)
            else:
                answer = struct.pack('!HHHIH', 0xC00C, 1, 1, 60, 4) + bytes([10, 5, 5, 5])
                server.sendto(data[:2] + struct.pack('!HHHHH', 0x8180, 1, 1, 0, 0) + question + answer, peer)
        """

    static let servfailServer = """
        import socket, struct
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); server.bind(('127.0.0.1', 0))
        print('PORT', server.getsockname()[1], flush=True)
        while True:
            data, peer = server.recvfrom(4096)
            end = data.index(0, 12) + 5
            server.sendto(data[:2] + struct.pack('!HHHHH', 0x8182, 1, 0, 0, 0) + data[12:end], peer)
        """
}
