// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import Testing

@testable import MacTCP

/// A DNS server of Debian's (dnsmasq) on loopback, answering from records the test gives it
/// on its command line (no upstream server, nothing asked beyond it).
final class TestDNSServer: Sendable {
    static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: "/usr/sbin/dnsmasq") }

    let port: UInt16
    let address: IPAddress
    private let process: ChildProcess

    /// Starts dnsmasq on `address` (127.0.0.1) with `records` (dnsmasq options such as
    /// `--host-record=name,addr`); names under `test` it does not know are NXDOMAIN. It
    /// listens on a free port, or on `fixedPort`.
    init(_ records: [String], address: IPAddress = .v4(IPv4.loopback), fixedPort: UInt16? = nil) throws {
        var lastError = ""
        for _ in 0..<5 {
            let port = try fixedPort ?? Tool.freeUDPPort()
            let process = try ChildProcess(
                "/usr/sbin/dnsmasq",
                [
                    "--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--pid-file=", "--user=root",
                    "--bind-interfaces", "--listen-address=\(address)", "--port=\(port)", "--local=/test/", "--log-facility=-",
                    "--local-ttl=300",
                ] + records)
            // Ready once it answers: ask it for a name it must not know.
            let probe = DNSMessage.query(id: 1, name: DNSName("probe.test")!, type: .a, udpSize: nil)
            let deadline = Clock.now + 5
            while Clock.now < deadline {
                if case .success = DNSExchange.ask(
                    probe, server: Endpoint(address, port: port), deadline: Deadline(milliseconds: 200))
                {
                    self.port = port
                    self.address = address
                    self.process = process
                    return
                }
                if !process.isRunning { break }
            }
            process.send(SIGTERM)
            lastError = (try? process.finish(timeout: 5).err) ?? ""
        }
        throw PeerError(description: "dnsmasq did not start: \(lastError)")
    }

    /// The server's IPv4 endpoint (0.0.0.0 for a server on IPv6).
    var endpoint: Endpoint { Endpoint(host: address.ipv4 ?? 0, port: port) }

    /// The server as a configuration's `nameServers` entry: `addr:port` or `[v6]:port`.
    var nameServer: String { Endpoint(address, port: port).description }

    deinit {
        process.send(SIGTERM)
        _ = try? process.finish(timeout: 5)
    }
}

extension Tool {
    /// A UDP port nothing uses now.
    static func freeUDPPort() throws -> UInt16 {
        let probe = try UDPStream()
        defer { probe.release() }
        return probe.port
    }
}

@Suite(
    "DNS exchanges with a real server", .serialized, .timeLimit(.minutes(1)),
    .enabled(if: TestDNSServer.isAvailable, "needs dnsmasq (Debian's dnsmasq-base)"))
struct DNSExchangeTests {
    static let bigText = (0..<12).map { "segment-\($0)-" + String(repeating: "x", count: 180) }

    static func records() -> [String] {
        [
            "--host-record=one.test,10.0.0.1", "--host-record=many.test,10.0.0.2", "--cname=alias.test,hop.test",
            "--cname=hop.test,one.test", "--mx-host=mail.test,mx1.test,10", "--txt-record=big.test,\(bigText.joined(separator: ","))",
        ]
    }

    private func ask(_ server: TestDNSServer, _ name: String, _ type: DNSRecordType) throws -> DNSMessage {
        let query = DNSMessage.query(id: 0, name: try #require(DNSName(name)), type: type, udpSize: 1232)
        return try DNSExchange.ask(query, server: server.endpoint, deadline: Deadline(milliseconds: 5000)).get()
    }

    @Test("an A record, a CNAME chain and NXDOMAIN, as the server sends them")
    func answers() throws {
        let server = try TestDNSServer(Self.records())
        let one = try ask(server, "one.test", .a)
        #expect(one.responseCode == 0 && one.answers.map(\.data) == [.a(0x0A00_0001)])
        let alias = try ask(server, "ALIAS.test", .a)
        #expect(alias.answers.map(\.type) == [.cname, .cname, .a])
        #expect(alias.answers.first?.data == .name(DNSName("hop.test")!))
        #expect(alias.answers.last?.data == .a(0x0A00_0001))
        let missing = try ask(server, "missing.test", .a)
        #expect(missing.responseCode == DNSResponseCode.nameError.rawValue && missing.answers.isEmpty)
        let mail = try ask(server, "mail.test", .mx)
        #expect(mail.answers.first?.data == .mx(preference: 10, exchange: DNSName("mx1.test")!))
    }

    @Test("an answer larger than 1,232 bytes comes truncated over UDP and whole over TCP")
    func truncatedThenTCP() throws {
        let server = try TestDNSServer(Self.records())
        let answer = try ask(server, "big.test", .txt)
        #expect(!answer.truncated)
        guard case .txt(let strings)? = answer.answers.first?.data else {
            Issue.record("no TXT record: \(answer.answers)")
            return
        }
        #expect(strings.map { String(decoding: $0, as: UTF8.self) } == Self.bigText)
        #expect(answer.encoded().count > 1232)
    }

    @Test("nothing listening: unreachable at once (ECONNREFUSED), not a wait for the deadline")
    func nobodyThere() throws {
        let port = try Tool.freeUDPPort()
        let query = DNSMessage.query(id: 0, name: DNSName("one.test")!, type: .a, udpSize: 1232)
        let start = Clock.now
        let result = DNSExchange.ask(query, server: Endpoint(host: IPv4.loopback, port: port), deadline: Deadline(milliseconds: 3000))
        #expect(result == .failure(.unreachable(ECONNREFUSED)))
        #expect(Clock.now - start < 1)
    }

    @Test("a hostile server's wrong answers (another ID, another question, another port) are ignored; the right one is taken")
    func spoofedAnswers() throws {
        let fake = try ChildProcess("python3", ["-c", Self.spoofingServer])
        let port = try fake.announcedPort()
        defer { fake.send(SIGTERM) }
        let query = DNSMessage.query(id: 0, name: DNSName("victim.test")!, type: .a, udpSize: 1232)
        let answer = try DNSExchange.ask(query, server: Endpoint(host: IPv4.loopback, port: port), deadline: Deadline(milliseconds: 5000))
            .get()
        #expect(answer.answers.map(\.data) == [.a(0x0A00_0063)], "took \(answer.answers)")
        // Only wrong answers: the deadline passes.
        let lying = DNSMessage.query(id: 0, name: DNSName("liar.test")!, type: .a, udpSize: 1232)
        let start = Clock.now
        let result = DNSExchange.ask(lying, server: Endpoint(host: IPv4.loopback, port: port), deadline: Deadline(milliseconds: 600))
        #expect(result == .failure(.timedOut))
        #expect(Clock.now - start >= 0.55)
    }

    /// Answers each query first with a wrong ID, a wrong question, from another port and in
    /// another case of the name (which counts), then (unless the name starts with "liar") right.
    static let spoofingServer = """
        import socket, struct
        server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); server.bind(('127.0.0.1', 0))
        other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); other.bind(('127.0.0.1', 0))
        print('PORT', server.getsockname()[1], flush=True)
        def answer(qid, question, address):
            header = struct.pack('!HHHHHH', qid, 0x8180, 1, 1, 0, 0)
            record = b'\\xc0\\x0c' + struct.pack('!HHIH', 1, 1, 60, 4) + bytes(address)
            return header + question + record
        while True:
            data, peer = server.recvfrom(4096)
            qid = struct.unpack('!H', data[:2])[0]
            end = data.index(0, 12) + 5
            question = data[12:end]
            name = question[1:1 + question[0]]
            server.sendto(answer(qid ^ 1, question, [10, 0, 0, 66]), peer)
            server.sendto(answer(qid, question.replace(b'test', b'tesu'), [10, 0, 0, 67]), peer)
            other.sendto(answer(qid, question, [10, 0, 0, 68]), peer)
            if name.startswith(b'liar'):
                continue
            server.sendto(answer(qid, question.upper(), [10, 0, 0, 99]), peer)
        """
}
