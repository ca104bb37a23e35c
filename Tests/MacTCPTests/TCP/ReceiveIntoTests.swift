// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP
import Testing

/// `receive(into:timeout:)`: MacTCP's TCPRcv into the caller's buffer, with the same results,
/// flags and errors as the receive that returns arrays.
@Suite("Receive into the caller's buffer", .timeLimit(.minutes(1)))
struct ReceiveIntoTests {
    /// Receives into a fresh buffer of `size` bytes; the bytes written and the flags.
    private func receive(_ stream: TCPStream, size: Int, timeout: Duration = .seconds(5)) throws -> TCPReceived {
        var buffer = [UInt8](repeating: 0, count: size)
        let result = try buffer.withUnsafeMutableBytes { try stream.receive(into: $0, timeout: timeout) }
        #expect(result.count >= 1 && result.count <= size)
        return TCPReceived(data: Array(buffer[..<result.count]), urgent: result.urgent, mark: result.mark)
    }

    @Test("the buffer bounds each result, the rest comes next; the Double form is the same", arguments: LoopbackFamily.allCases)
    func bufferBoundsResult(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        try pair.peer.send("0123456789")
        try waitUntil("10 unread") { try pair.stream.status().amtUnreadData == 10 }
        #expect(try receive(pair.stream, size: 3) == TCPReceived(data: Array("012".utf8), urgent: false, mark: false))
        var buffer = [UInt8](repeating: 0, count: 100)
        let rest = try buffer.withUnsafeMutableBytes { try pair.stream.receive(into: $0, timeout: 5.0) }
        #expect(rest == TCPReceivedCount(count: 7, urgent: false, mark: false))
        #expect(Array(buffer[..<7]) == Array("3456789".utf8))
        // Nothing is written past the count.
        #expect(buffer[7...].allSatisfy { $0 == 0 })
    }

    @Test("an empty buffer or a negative timeout is invalidLength; no data in time is commandTimeout", arguments: LoopbackFamily.allCases)
    func badArgumentsAndTimeout(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        expectMacTCPError(.invalidLength) {
            _ = try pair.stream.receive(into: UnsafeMutableRawBufferPointer(start: nil, count: 0), timeout: .seconds(1))
        }
        var buffer = [UInt8](repeating: 0, count: 8)
        buffer.withUnsafeMutableBytes { bytes in
            expectMacTCPError(.invalidLength) { _ = try pair.stream.receive(into: bytes, timeout: -1.0) }
            let start = Clock.now
            expectMacTCPError(.commandTimeout) { _ = try pair.stream.receive(into: bytes, timeout: .milliseconds(150)) }
            #expect(Clock.now - start >= 0.14)
        }
        // Still usable afterwards, and the bytes that were not there were not lost.
        try pair.peer.send("x")
        #expect(try receive(pair.stream, size: 8).data == [120])
    }

    @Test(
        "an urgent region comes apart from normal data, urgent on its first result and mark on its last, mixed with array receives",
        arguments: LoopbackFamily.allCases)
    func urgentRegions(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        try pair.peer.send("abc")
        try pair.peer.sendUrgent(Array("0123456789".utf8))
        try pair.peer.send("after")
        try waitUntil("18 unread bytes") { try pair.stream.status().amtUnreadData == 18 }
        // Everything up to the urgent pointer is urgent data, in pieces of the buffer's size.
        #expect(try receive(pair.stream, size: 5) == TCPReceived(data: Array("abc01".utf8), urgent: true, mark: false))
        #expect(try pair.stream.receive(timeout: 5, maxLength: 4) == TCPReceived(data: Array("2345".utf8), urgent: false, mark: false))
        #expect(try receive(pair.stream, size: 100) == TCPReceived(data: Array("6789".utf8), urgent: false, mark: true))
        #expect(try receive(pair.stream, size: 100) == TCPReceived(data: Array("after".utf8), urgent: false, mark: false))
        // A region in one result has both flags.
        try pair.peer.sendUrgent(Array("U".utf8))
        try pair.peer.send("n")
        try waitUntil("2 unread bytes") { try pair.stream.status().amtUnreadData == 2 }
        #expect(try receive(pair.stream, size: 100) == TCPReceived(data: Array("U".utf8), urgent: true, mark: true))
        #expect(try receive(pair.stream, size: 100) == TCPReceived(data: Array("n".utf8), urgent: false, mark: false))
    }

    @Test("a megabyte read through a 4 KiB buffer arrives whole and in order", arguments: LoopbackFamily.allCases)
    func transfer(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let size = 1 << 20
        let payload = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ $0 >> 11) }
        let peer = pair.peer
        let sender = Background {
            try peer.send(payload)
            peer.shutdownWrite()
        }
        var received: [UInt8] = []
        received.reserveCapacity(size)
        var buffer = [UInt8](repeating: 0, count: 4096)
        do {
            while true {
                let result = try buffer.withUnsafeMutableBytes { try pair.stream.receive(into: $0, timeout: .seconds(10)) }
                received.append(contentsOf: buffer[..<result.count])
            }
        } catch MacTCPError.connectionClosing {
            // Every byte has been read.
        }
        _ = try sender.value().get()
        #expect(received.count == size)
        #expect(received == payload)
    }

    @Test(
        "the end of the stream is connectionClosing, a reset connectionTerminated, no connection connectionDoesntExist, a released stream invalidStreamPtr",
        arguments: LoopbackFamily.allCases)
    func errors(_ family: LoopbackFamily) throws {
        var buffer = [UInt8](repeating: 0, count: 16)
        try buffer.withUnsafeMutableBytes { bytes in
            let closed = try activePair(family: family)
            try closed.peer.send("last")
            closed.peer.shutdownWrite()
            try waitUntil("4 unread bytes") { try closed.stream.status().amtUnreadData == 4 }
            #expect(try closed.stream.receive(into: bytes, timeout: .seconds(5)).count == 4)
            expectMacTCPError(.connectionClosing) { _ = try closed.stream.receive(into: bytes, timeout: .seconds(5)) }

            let reset = try activePair(family: family)
            reset.peer.reset()
            expectMacTCPError(.connectionTerminated) { _ = try reset.stream.receive(into: bytes, timeout: .seconds(5)) }

            let idle = try TCPStream()
            expectMacTCPError(.connectionDoesntExist) { _ = try idle.receive(into: bytes, timeout: .seconds(1)) }
            idle.release()
            expectMacTCPError(.invalidStreamPtr) { _ = try idle.receive(into: bytes, timeout: .seconds(1)) }
        }
    }
}
