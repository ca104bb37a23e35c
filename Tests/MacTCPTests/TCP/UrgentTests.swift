// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP
import Testing

/// Urgent data: receive with the mark at the exact byte, and urgent send checked by a peer
/// with SO_OOBINLINE and sockatmark.
@Suite("Urgent data", .timeLimit(.minutes(1)))
struct UrgentTests {
    @Test("an urgent region is returned apart from normal data, with urgent and mark on its last byte", arguments: LoopbackFamily.allCases)
    func urgentRegionWithMark(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        try pair.peer.send("hello")
        try waitUntil("5 unread bytes") { try pair.stream.status().amtUnreadData == 5 }
        #expect(try pair.stream.receive(timeout: 5) == TCPReceived(data: Array("hello".utf8), urgent: false, mark: false))
        try pair.peer.sendUrgent(Array("ABCDEFGH".utf8))
        try pair.peer.send("tail")
        try waitUntil("12 unread bytes") { try pair.stream.status().amtUnreadData == 12 }
        #expect(try pair.stream.receive(timeout: 5) == TCPReceived(data: Array("ABCDEFGH".utf8), urgent: true, mark: true))
        #expect(try pair.stream.receive(timeout: 5) == TCPReceived(data: Array("tail".utf8), urgent: false, mark: false))
    }

    @Test("everything before the urgent pointer is urgent (RFC 793), never mixed with what follows", arguments: LoopbackFamily.allCases)
    func normalBytesBeforePointerAreUrgent(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        try pair.peer.send("abc")
        try pair.peer.sendUrgent(Array("XY".utf8))
        try pair.peer.send("def")
        try waitUntil("8 unread bytes") { try pair.stream.status().amtUnreadData == 8 }
        #expect(try pair.stream.receive(timeout: 5) == TCPReceived(data: Array("abcXY".utf8), urgent: true, mark: true))
        #expect(try pair.stream.receive(timeout: 5) == TCPReceived(data: Array("def".utf8), urgent: false, mark: false))
    }

    @Test("several regions read one after another each end with their own mark", arguments: LoopbackFamily.allCases)
    func severalRegions(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        for round in 0..<5 {
            let urgentText = Array("U\(round)-urgent".utf8)
            try pair.peer.sendUrgent(urgentText)
            try pair.peer.send("n\(round)")
            try waitUntil("region \(round)") { try pair.stream.status().amtUnreadData == urgentText.count + 2 }
            #expect(try pair.stream.receive(timeout: 5) == TCPReceived(data: urgentText, urgent: true, mark: true))
            #expect(try pair.stream.receive(timeout: 5) == TCPReceived(data: Array("n\(round)".utf8), urgent: false, mark: false))
        }
    }

    @Test(
        "a region larger than maxLength: urgent on the first result, mark on the last, neither between", arguments: LoopbackFamily.allCases)
    func regionLargerThanMaxLength(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let region = Array("0123456789".utf8)
        try pair.peer.sendUrgent(region)
        try pair.peer.send("after")
        try waitUntil("15 unread bytes") { try pair.stream.status().amtUnreadData == 15 }
        #expect(try pair.stream.receive(timeout: 5, maxLength: 4) == TCPReceived(data: Array("0123".utf8), urgent: true, mark: false))
        #expect(try pair.stream.receive(timeout: 5, maxLength: 4) == TCPReceived(data: Array("4567".utf8), urgent: false, mark: false))
        #expect(try pair.stream.receive(timeout: 5, maxLength: 4) == TCPReceived(data: Array("89".utf8), urgent: false, mark: true))
        #expect(try pair.stream.receive(timeout: 5) == TCPReceived(data: Array("after".utf8), urgent: false, mark: false))
    }

    @Test("a buffer ending right before the mark: the next result is the mark byte alone", arguments: LoopbackFamily.allCases)
    func bufferEndsBeforeMark(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        try pair.peer.sendUrgent(Array("ABCD".utf8))
        try waitUntil("4 unread bytes") { try pair.stream.status().amtUnreadData == 4 }
        #expect(try pair.stream.receive(timeout: 5, maxLength: 3) == TCPReceived(data: Array("ABC".utf8), urgent: true, mark: false))
        #expect(try pair.stream.receive(timeout: 5, maxLength: 3) == TCPReceived(data: Array("D".utf8), urgent: false, mark: true))
    }

    @Test(
        "a mark at or past a kilobyte of data, where a small read's buffer ends, ends the same result", arguments: LoopbackFamily.allCases)
    func markAtSmallReadBoundary(_ family: LoopbackFamily) throws {
        for before in [1023, 1024, 1500] {
            let pair = try activePair(family: family)
            let normal = (0..<before).map { UInt8(truncatingIfNeeded: $0) }
            try pair.peer.send(normal)
            try pair.peer.sendUrgent(Array("X".utf8))
            try pair.peer.send("tail")
            try waitUntil("\(before + 5) unread bytes") { try pair.stream.status().amtUnreadData == before + 5 }
            let region = try pair.stream.receive(timeout: 5)
            let whole = region == TCPReceived(data: normal + Array("X".utf8), urgent: true, mark: true)
            #expect(whole, "\(before) bytes and the mark: \(region.data.count) returned, urgent \(region.urgent), mark \(region.mark)")
            #expect(try pair.stream.receive(timeout: 5) == TCPReceived(data: Array("tail".utf8), urgent: false, mark: false))
        }
    }

    @Test("urgent data arriving while a receive waits completes that receive as urgent", arguments: LoopbackFamily.allCases)
    func urgentWhileReceiveWaits(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let stream = pair.stream
        let pending = Background { try stream.receive(timeout: 5) }
        usleep(100_000)
        #expect(!pending.isFinished)
        try pair.peer.sendUrgent(Array("!".utf8))
        let result = try pending.value().get()
        #expect(result == TCPReceived(data: Array("!".utf8), urgent: true, mark: true))
    }

    @Test("urgent send puts the pointer after its last byte (peer: SO_OOBINLINE + sockatmark)", arguments: LoopbackFamily.allCases)
    func urgentSendPlacesMark(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        pair.peer.setOOBInline()
        try pair.stream.send("abc")
        try pair.stream.send("URGENT", urgent: true)
        try pair.stream.send("xyz")
        try pair.peer.waitUnread(12)
        // The peer's read stops in front of the last urgent byte, where sockatmark is true.
        let first = try pair.peer.receive(max: 100)
        #expect(first == Array("abcURGEN".utf8))
        #expect(pair.peer.atMark)
        let rest = try pair.peer.receive(max: 100)
        #expect(rest == Array("Txyz".utf8))
        #expect(!pair.peer.atMark)
    }

    @Test("an urgent send larger than the socket buffers still has one mark, after its last byte", arguments: LoopbackFamily.allCases)
    func largeUrgentSendHasOneMark(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        pair.peer.setOOBInline()
        let big = (0..<600_000).map { UInt8(truncatingIfNeeded: $0 % 251) }
        let stream = pair.stream
        let sending = Background { try stream.send(big, urgent: true) }
        var received: [UInt8] = []
        var marks: Set<Int> = []
        while received.count < big.count {
            #expect(try pair.peer.receive(into: &received, marks: &marks, max: 100_000))
        }
        _ = try sending.value().get()
        #expect(received == big)
        #expect(marks == [big.count])
    }

    @Test("the .urgent event comes once per region when no receive is pending", arguments: LoopbackFamily.allCases)
    func urgentEventOncePerRegion(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try activePair(family: family, events: log)
        try pair.peer.sendUrgent(Array("U".utf8))
        try log.wait(for: .urgent)
        try pair.peer.send("more data after the urgent byte")
        try pair.peer.send("and more")
        log.settle()
        #expect(log.count(.urgent) == 1)
        let first = try pair.stream.receive(timeout: 5)
        #expect(first.urgent && first.mark)
        try pair.peer.sendUrgent(Array("V".utf8))
        try log.wait(for: .urgent, count: 2)
        log.settle()
        #expect(log.count(.urgent) == 2)
    }

    @Test(".urgent is delivered before the .dataArrival of the same arrival", arguments: LoopbackFamily.allCases)
    func urgentBeforeDataArrival(_ family: LoopbackFamily) throws {
        for _ in 0..<5 {
            let log = EventLog()
            let pair = try activePair(family: family, events: log)
            // One segment: normal bytes, then the urgent byte that ends the region.
            try pair.peer.sendUrgent(Array("abcU".utf8))
            try log.wait(for: .urgent)
            try log.wait(for: .dataArrival)
            let kinds = log.kinds
            #expect(kinds.firstIndex(of: .urgent)! < kinds.firstIndex(of: .dataArrival)!, "\(kinds)")
            pair.stream.release()
        }
    }
}
