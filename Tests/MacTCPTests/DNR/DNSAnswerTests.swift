// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Testing

@testable import MacTCP

/// Reading an answer: the CNAME chain, the records at its end, nothing off the chain.
@Suite("units: what an answer says")
struct DNSAnswerTests {
    func record(_ owner: String, _ type: DNSRecordType, _ data: DNSRecord.Data, ttl: UInt32 = 60) -> DNSRecord {
        DNSRecord(name: DNSName(owner)!, type: type, dnsClass: 1, ttl: ttl, data: data)
    }

    func message(_ records: [DNSRecord], additional: [DNSRecord] = []) -> DNSMessage {
        var message = DNSMessage(id: 1)
        message.isResponse = true
        message.answers = records
        message.additional = additional
        return message
    }

    @Test("a chain of CNAMEs is followed to its A records; records off the chain and additional ones are not believed")
    func chain() throws {
        let answer = try DNSAnswer(
            message(
                [
                    record("www.example.org", .cname, .name(DNSName("Web.Example.org")!)),
                    record("bank.example", .a, .a(0x0101_0101)),  // off the chain: a poisoning attempt
                    record("web.example.org", .cname, .name(DNSName("host.example.net")!)),
                    record("HOST.example.net", .a, .a(0x0A00_0001)),
                    record("host.example.net", .a, .a(0x0A00_0002)),
                ], additional: [record("host.example.net", .a, .a(0x0606_0606))]),
            question: DNSName("www.example.org")!, type: .a)
        #expect(answer.canonicalName.description == "host.example.net")
        #expect(answer.found.map(\.data) == [.a(0x0A00_0001), .a(0x0A00_0002)])
        #expect(answer.records.map(\.type) == [.cname, .cname, .a, .a])
    }

    @Test("no record of the type: an empty result naming where the chain ended")
    func noData() throws {
        let answer = try DNSAnswer(
            message([record("alias.example", .cname, .name(DNSName("real.example")!))]), question: DNSName("alias.example")!, type: .mx)
        #expect(answer.found.isEmpty && answer.canonicalName.description == "real.example" && answer.records.count == 1)
    }

    @Test("a CNAME loop, or a chain of more than 8 links, is an error")
    func loops() {
        let loop = message([
            record("a.example", .cname, .name(DNSName("b.example")!)), record("b.example", .cname, .name(DNSName("A.example")!)),
        ])
        #expect(throws: DNSFormatError.self) { try DNSAnswer(loop, question: DNSName("a.example")!, type: .a) }
        let long = message((0..<9).map { record("n\($0).example", .cname, .name(DNSName("n\($0 + 1).example")!)) })
        #expect(throws: DNSFormatError.self) { try DNSAnswer(long, question: DNSName("n0.example")!, type: .a) }
        let eight = message(
            (0..<8).map { record("n\($0).example", .cname, .name(DNSName("n\($0 + 1).example")!)) } + [record("n8.example", .a, .a(1))])
        #expect((try? DNSAnswer(eight, question: DNSName("n0.example")!, type: .a))?.found.count == 1)
    }
}
