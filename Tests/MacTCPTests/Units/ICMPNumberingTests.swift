// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Testing

@testable import MacTCP

/// ICMP and ICMPv6 messages in MacTCP's numbering (the detail of `.icmpReceived`).
@Suite("units: ICMP numbering")
struct ICMPNumberingTests {
    @Test(
        "ICMPv6 (RFC 4443) types and codes map to MacTCP's numbering",
        arguments: [
            (UInt8(1), UInt8(0), ICMPMessageType.netUnreach), (1, 6, .netUnreach), (1, 1, .hostUnreach),
            (1, 3, .hostUnreach), (1, 5, .hostUnreach), (1, 4, .portUnreach), (2, 0, .fragReqd), (3, 0, .timeExceeded),
            (3, 1, .timeExceeded), (4, 0, .parmProblem), (4, 2, .parmProblem),
        ] as [(UInt8, UInt8, ICMPMessageType)])
    func icmpv6(type: UInt8, code: UInt8, expected: ICMPMessageType) {
        #expect(ICMPMessageType(icmpType: type, code: code, icmpv6: true) == expected)
    }

    @Test("ICMPv6 informational messages map to nothing; the same numbers as ICMP mean ICMP's messages")
    func notErrors() {
        #expect(ICMPMessageType(icmpType: 128, code: 0, icmpv6: true) == nil)  // echo request
        #expect(ICMPMessageType(icmpType: 135, code: 0, icmpv6: true) == nil)  // neighbour solicitation
        #expect(ICMPMessageType(icmpType: 3, code: 3, icmpv6: false) == .portUnreach)
        #expect(ICMPMessageType(icmpType: 3, code: 3, icmpv6: true) == .timeExceeded)
        #expect(ICMPMessageType(icmpType: 11, code: 0, icmpv6: false) == .timeExceeded)
        #expect(ICMPMessageType(icmpType: 11, code: 0, icmpv6: true) == nil)
    }
}
