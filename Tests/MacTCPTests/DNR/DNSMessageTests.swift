// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Testing

@testable import MacTCP

/// The DNS message codec as a unit: what a server sends is read exactly, and nothing a
/// hostile one sends makes it trap, loop or allocate without bound.
@Suite("units: DNS messages")
struct DNSMessageTests {
    @Test("a query is written as RFC 1035 and RFC 6891 lay it out, byte for byte")
    func queryBytes() throws {
        let name = try #require(DNSName("Example.ORG."))
        let query = DNSMessage.query(id: 0xBEEF, name: name, type: .mx, udpSize: 1232)
        #expect(
            query.encoded() == [
                0xBE, 0xEF, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,  // header: RD, 1 question, 1 additional
                7, 69, 120, 97, 109, 112, 108, 101, 3, 79, 82, 71, 0, 0, 15, 0, 1,  // Example.ORG MX IN
                0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0,  // OPT, 1,232 bytes
            ])
        #expect(try DNSMessage(decoding: query.encoded()) == query)
    }

    @Test("every record type the resolver uses survives a round trip; names compare without case")
    func roundTrip() throws {
        let owner = try #require(DNSName("www.example.org"))
        let target = try #require(DNSName("Mail.Example.org"))
        var message = DNSMessage(id: 7)
        message.isResponse = true
        message.authoritative = true
        message.truncated = true
        message.recursionAvailable = true
        message.responseCode = 3
        message.questions = [.init(name: owner, type: .a, dnsClass: 1)]
        let records: [DNSRecord.Data] = [
            .a(0x0A00_0001), .aaaa([0xFD, 0] + [UInt8](repeating: 0, count: 13) + [1]), .name(target),
            .mx(preference: 10, exchange: target), .txt([Array("v=spf1".utf8), [], [UInt8](repeating: 0x41, count: 255)]),
            .srv(priority: 1, weight: 2, port: 5060, target: target), .hinfo(cpu: Array("PDP-11".utf8), os: Array("UNIX".utf8)),
            .soa(mname: target, rname: owner, serial: 2_026_120_701, refresh: 3600, retry: 600, expire: 86_400, minimum: 300),
            .other([1, 2, 3]),
        ]
        let types: [DNSRecordType] = [.a, .aaaa, .cname, .mx, .txt, .srv, .hinfo, .soa, DNSRecordType(rawValue: 99)]
        message.answers = zip(types, records).map { DNSRecord(name: owner, type: $0, dnsClass: 1, ttl: 3600, data: $1) }
        message.authority = [DNSRecord(name: owner, type: .ptr, dnsClass: 1, ttl: 0, data: .name(.root))]
        let decoded = try DNSMessage(decoding: message.encoded())
        #expect(decoded == message)
        #expect(decoded.truncated && decoded.isResponse && decoded.authoritative && decoded.responseCode == 3)
        #expect(target.sameName(as: try #require(DNSName("mail.EXAMPLE.org."))))
        #expect(!target.sameName(as: owner))
        #expect(target.description == "Mail.Example.org")
        #expect(DNSRecordType(rawValue: 99).description == "TYPE99")
        #expect(DNSRecordType(mnemonic: "aaaa") == .aaaa && DNSRecordType(mnemonic: "TYPE65") == DNSRecordType(rawValue: 65))
    }

    @Test("names: labels 1 to 63 bytes, at most 253 characters; the root")
    func names() {
        #expect(DNSName("a..b") == nil)
        #expect(DNSName(String(repeating: "x", count: 64) + ".org") == nil)
        #expect(DNSName(String(repeating: "x", count: 63) + ".org") != nil)
        let long = Array(repeating: String(repeating: "y", count: 49), count: 5).joined(separator: ".")  // 249
        #expect(DNSName(long + ".abc") != nil)  // 253
        #expect(DNSName(long + ".abcd") == nil)  // 254
        #expect(DNSName(".") == .root && DNSName("")?.labels.isEmpty == true)
    }

    /// A response header with the given counts, then `body`.
    private func response(questions: UInt16 = 0, answers: UInt16 = 0, _ body: [UInt8]) -> [UInt8] {
        [0, 1, 0x81, 0x80, 0, UInt8(questions), 0, UInt8(answers), 0, 0, 0, 0] + body
    }

    @Test("compression pointers are followed backwards; a loop, a forward pointer or one past the end is an error")
    func compression() throws {
        // example.org at 12, www -> pointer to 12 at 25.
        let question: [UInt8] = [7] + Array("example".utf8) + [3] + Array("org".utf8) + [0, 0, 1, 0, 1]
        let answer: [UInt8] = [3] + Array("www".utf8) + [0xC0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, 1]
        let message = try DNSMessage(decoding: response(questions: 1, answers: 1, question + answer))
        #expect(message.answers.first?.name.description == "www.example.org")
        #expect(message.answers.first?.data == .a(0x0A00_0001))
        // A pointer to itself, a pointer forwards, a pointer out of the message, a cut pointer.
        for body: [UInt8] in [[0xC0, 12, 0, 1, 0, 1], [0xC0, 14, 0, 0, 1, 0, 1], [0xC0, 0xFF, 0, 1, 0, 1], [3, 97, 98, 99, 0xC0]] {
            #expect(throws: DNSFormatError.self) { try DNSMessage(decoding: response(questions: 1, body)) }
        }
        // Two pointers that point at each other.
        let loop: [UInt8] = [0, 0, 1, 0, 1] + [0xC0, 17] + [0xC0, 12]
        #expect(throws: DNSFormatError.self) { try DNSMessage(decoding: response(questions: 1, [0xC0, 19] + loop)) }
    }

    @Test("counts that lie, data longer or shorter than its record, reserved label types: errors, never traps")
    func malformed() {
        let cases: [[UInt8]] = [
            response(questions: 200, []),  // counts far beyond the bytes
            response(answers: 1, [0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 5, 10, 0, 0, 1]),  // A of 5 bytes claimed, 4 there
            response(answers: 1, [0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 3, 10, 0, 0]),  // A of 3 bytes
            response(answers: 1, [0, 0, 15, 0, 1, 0, 0, 0, 60, 0, 4, 0, 10, 1, 97]),  // MX name runs past its data
            response(answers: 1, [0, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, 97, 0, 0x99]),  // CNAME data longer than its name
            response(questions: 1, [0x40, 0, 1, 0, 1]),  // label type 01
            [0, 1, 0x81],  // a short header
        ]
        for bytes in cases {
            #expect(throws: DNSFormatError.self) { try DNSMessage(decoding: bytes) }
        }
    }

    @Test("a million random corruptions of a real answer: each one decoded or refused, none traps")
    func fuzz() throws {
        var generator = SeededGenerator(seed: 0xD0D0)
        let owner = try #require(DNSName("a.example.org"))
        var message = DNSMessage(id: 9)
        message.isResponse = true
        message.questions = [.init(name: owner, type: .mx, dnsClass: 1)]
        message.answers = [
            DNSRecord(name: owner, type: .mx, dnsClass: 1, ttl: 60, data: .mx(preference: 5, exchange: owner)),
            DNSRecord(name: owner, type: .txt, dnsClass: 1, ttl: 60, data: .txt([Array("hello".utf8)])),
        ]
        let base = message.encoded()
        var refused = 0
        for _ in 0..<1_000_000 {
            var bytes = base
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            if Bool.random(using: &generator) { bytes.removeLast(Int.random(in: 0..<bytes.count, using: &generator)) }
            do { _ = try DNSMessage(decoding: bytes) } catch { refused += 1 }
        }
        #expect(refused > 0 && refused < 1_000_000)
    }
}
