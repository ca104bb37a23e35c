// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP
import Testing

@Suite("Receive: timeouts, end of stream, reset", .timeLimit(.minutes(1)))
struct ReceiveTests {
    @Test("no data within the timeout is commandTimeout, after the timeout and not long after", arguments: LoopbackFamily.allCases)
    func timeout(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let start = Clock.now
        expectMacTCPError(.commandTimeout) { _ = try pair.stream.receive(timeout: .milliseconds(200)) }
        let elapsed = Clock.now - start
        #expect(elapsed >= 0.19 && elapsed < 1.5)
        // The Double form behaves the same.
        expectMacTCPError(.commandTimeout) { _ = try pair.stream.receive(timeout: 0.05) }
        // Still usable afterwards.
        try pair.peer.send("x")
        #expect(try pair.stream.receive(timeout: 5).data == [120])
    }

    @Test("a zero timeout waits without limit", arguments: LoopbackFamily.allCases)
    func zeroTimeoutWaits(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let stream = pair.stream
        let pending = Background { try stream.receive(timeout: .zero) }
        usleep(300_000)
        #expect(!pending.isFinished)
        try pair.peer.send("late")
        #expect(try pending.value().get().data == Array("late".utf8))
    }

    @Test("maxLength bounds each result", arguments: LoopbackFamily.allCases)
    func maxLength(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        try pair.peer.send("0123456789")
        try pair.peer.waitUnread(0)
        try waitUntil("10 unread") { try pair.stream.status().amtUnreadData == 10 }
        #expect(try pair.stream.receive(timeout: 5, maxLength: 3).data == Array("012".utf8))
        #expect(try pair.stream.receive(timeout: 5, maxLength: 100).data == Array("3456789".utf8))
        expectMacTCPError(.invalidLength) { _ = try pair.stream.receive(timeout: 5, maxLength: 0) }
    }

    @Test(
        "a receive returns everything ready up to maxLength, whatever the size of the read before; small results hold small arrays",
        arguments: LoopbackFamily.allCases)
    func resultsTakeWhatIsReady(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        // A small result that follows a small one is made at its size (not maxLength's).
        let smallAfterSmall: Set<Int> = [10, 3, 7]
        for size in [10, 5000, 1, 3, 1024, 1025, 70000, 2, 7] {
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ size) }
            try pair.peer.send(bytes)
            try waitUntil("\(size) unread") { try pair.stream.status().amtUnreadData == size }
            let first = try pair.stream.receive(timeout: 5)
            let whole = first.data == Array(bytes.prefix(65536))
            #expect(whole, "\(size) bytes ready, \(first.data.count) returned")
            if smallAfterSmall.contains(size) {
                #expect(first.data.capacity < 1024, "\(size) bytes held in an array of \(first.data.capacity)")
            }
            if size > 65536 {
                let rest = try pair.stream.receive(timeout: 5).data
                #expect(rest == Array(bytes[65536...]), "\(size - 65536) bytes left, \(rest.count) returned")
            }
        }
    }

    @Test(
        "concurrent receives are served in turn: the first one waiting gets the first data, the next one the next",
        arguments: LoopbackFamily.allCases)
    func receivesTakeTurns(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let stream = pair.stream
        let first = Background { try stream.receive(timeout: 10).data }
        usleep(300_000)
        let second = Background { try stream.receive(timeout: 10).data }
        usleep(300_000)
        try pair.peer.send("one")
        #expect(try first.value().get() == Array("one".utf8))
        usleep(100_000)
        #expect(!second.isFinished)
        try pair.peer.send("two")
        #expect(try second.value().get() == Array("two".utf8))
    }

    @Test(
        "a receive waiting for its turn times out by its own deadline, and abort ends it with the one holding the turn",
        arguments: LoopbackFamily.allCases)
    func receiveTurnTimeoutAndAbort(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let stream = pair.stream
        let holder = Background { try stream.receive(timeout: 20).data }
        usleep(300_000)
        let start = Clock.now
        expectMacTCPError(.commandTimeout) { _ = try stream.receive(timeout: .milliseconds(300)) }
        let elapsed = Clock.now - start
        #expect(elapsed >= 0.29 && elapsed < 5)
        #expect(!holder.isFinished)
        let waiting = Background { try stream.receive(timeout: 20).data }
        usleep(300_000)
        try stream.abort()
        #expect(throws: MacTCPError.connectionTerminated) { try holder.value().get() }
        #expect(throws: MacTCPError.connectionTerminated) { try waiting.value().get() }
    }

    @Test("after the peer closes and every byte is read: connectionClosing, every time", arguments: LoopbackFamily.allCases)
    func endOfStream(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try activePair(family: family, events: log)
        try pair.peer.send("last words")
        pair.peer.shutdownWrite()
        var data: [UInt8] = []
        while data.count < 10 { data += try pair.stream.receive(timeout: 5).data }
        #expect(data == Array("last words".utf8))
        expectMacTCPError(.connectionClosing) { _ = try pair.stream.receive(timeout: 5) }
        expectMacTCPError(.connectionClosing) { _ = try pair.stream.receive(timeout: 5) }
        try log.wait(for: .closing)
        log.settle()
        #expect(log.count(.closing) == 1)
        // Sending is still allowed after the peer's half-close.
        try pair.stream.send("reply")
        #expect(try pair.peer.receive(exactly: 5) == Array("reply".utf8))
    }

    @Test(
        "a reset right behind the peer's FIN: the receive at end of stream throws connectionTerminated, not connectionClosing",
        arguments: LoopbackFamily.allCases)
    func resetBehindFIN(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)  // no ASR: the receive itself decides
        try pair.peer.send("last")
        pair.peer.shutdownWrite()
        usleep(50_000)
        pair.peer.reset()
        usleep(50_000)
        #expect(try pair.stream.receive(timeout: 5).data == Array("last".utf8))
        expectMacTCPError(.connectionTerminated) { _ = try pair.stream.receive(timeout: 5) }
    }

    @Test(
        "a reset behind unread data of every size around a small read's buffer: the data, then connectionTerminated",
        arguments: LoopbackFamily.allCases)
    func resetBehindData(_ family: LoopbackFamily) throws {
        for size in [1023, 1024, 1025, 3000] {
            let pair = try activePair(family: family)  // no ASR: the receive itself decides
            let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
            try pair.peer.send(bytes)
            try waitUntil("\(size) unread") { try pair.stream.status().amtUnreadData == size }
            pair.peer.reset()
            usleep(50_000)
            var received: [UInt8] = []
            var ending: MacTCPError?
            while ending == nil {
                do {
                    received += try pair.stream.receive(timeout: 5, maxLength: 4096).data
                } catch let error as MacTCPError {
                    ending = error
                }
            }
            #expect(received == bytes, "\(size) bytes sent, \(received.count) received")
            #expect(ending == .connectionTerminated, "\(size) bytes: the receive ended with \(ending.map { "\($0)" } ?? "")")
        }
    }

    @Test("a remote reset: receive and send throw connectionTerminated, .terminate(remoteAbort) once", arguments: LoopbackFamily.allCases)
    func remoteReset(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try activePair(family: family, events: log)
        let stream = pair.stream
        let pending = Background { try stream.receive(timeout: 5) }
        usleep(100_000)
        pair.peer.reset()
        let result = try pending.value()
        #expect(throws: MacTCPError.connectionTerminated) { try result.get() }
        expectMacTCPError(.connectionTerminated) { _ = try stream.receive(timeout: 1) }
        expectMacTCPError(.connectionTerminated) { try stream.send("x") }
        expectMacTCPError(.connectionTerminated) { try stream.close() }
        try log.wait(for: .terminate)
        log.settle()
        #expect(log.details(.terminate) == [TCPTerminationReason.remoteAbort.rawValue])
        #expect(try stream.status().state == .closed)
    }

    @Test(
        "a reset in the middle of a send: the blocked send throws connectionTerminated, .terminate(remoteAbort) once, what arrived is intact"
    )
    func remoteResetMidSend() throws {
        let log = EventLog()
        let listener = try Peer.listener()
        listener.setReceiveBuffer(16_384)
        let stream = try TCPStream()
        log.attach(to: stream)
        try stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        let peer = try listener.accept()
        let pattern = Pattern(seed: 3)
        let total = 32 << 20
        let sending = Background { try stream.send(pattern.bytes(at: 0, count: total)) }
        // The peer reads a little, so that the send is under way, then resets.
        var received: [UInt8] = []
        while received.count < 1 << 20 { received += try peer.receive(max: 65536, timeout: 10) }
        #expect(!sending.isFinished, "the send is still under way (32 MiB into a 16 KiB window)")
        peer.reset()
        #expect(throws: MacTCPError.connectionTerminated) { try sending.value(timeout: 10).get() }
        try log.wait(for: .terminate)
        log.settle(0.3)
        #expect(log.details(.terminate) == [TCPTerminationReason.remoteAbort.rawValue])
        #expect(received.withUnsafeBytes { pattern.matches($0, at: 0) })
        print("reset mid-send: \(received.count) of \(total) bytes delivered intact before the reset")
    }

    @Test("a reset while nobody is blocked is found by the reactor: .terminate(remoteAbort) once", arguments: LoopbackFamily.allCases)
    func remoteResetIdle(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try passivePair(family: family, events: log)
        pair.peer.reset()
        try log.wait(for: .terminate)
        log.settle()
        #expect(log.details(.terminate) == [TCPTerminationReason.remoteAbort.rawValue])
        expectMacTCPError(.connectionTerminated) { _ = try pair.stream.receive(timeout: 1) }
    }

    @Test("negative, NaN and infinite Double timeouts are invalidLength", arguments: LoopbackFamily.allCases)
    func badDoubleTimeouts(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        for bad in [-1.0, .nan, .infinity, -.infinity, 1e300] {
            expectMacTCPError(.invalidLength) { _ = try pair.stream.receive(timeout: bad) }
        }
        expectMacTCPError(.invalidLength) { _ = try pair.stream.receive(timeout: .seconds(-1)) }
        do {
            _ = try pair.stream.receive(timeout: -1)
        } catch let error as MacTCPError {
            #expect(error.description.contains("timeout"))
        }
    }
}
