// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP
import Synchronization
import Testing

@Suite("Send: push, waitForAck, String", .timeLimit(.minutes(1)))
struct SendTests {
    @Test("push: false coalesces with the next send; the pushed send flushes everything at once", arguments: LoopbackFamily.allCases)
    func nonPushedSendsCoalesce(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        for index in 0..<5 {
            try pair.stream.send(Array(repeating: UInt8(48 + index), count: 10), push: false)
        }
        usleep(50_000)
        // Nothing has left yet: the bytes wait for the next send (or the ~200 ms cork timer).
        #expect(pair.peer.unread == 0)
        try pair.stream.send(Array(repeating: 57, count: 10), push: true)
        try pair.peer.waitUnread(60)
        // All 60 bytes arrived together, as one segment.
        #expect(try pair.peer.receive(max: 1000).count == 60)
    }

    @Test("push: false data still leaves on its own, within about 200 ms", arguments: LoopbackFamily.allCases)
    func nonPushedDataLeavesEventually(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let start = Clock.now
        try pair.stream.send("held", push: false)
        try pair.peer.waitUnread(4, timeout: 2)
        let elapsed = Clock.now - start
        #expect(elapsed > 0.1, "non-pushed data left after \(elapsed) s, before the cork timer")
        #expect(elapsed < 1.5)
    }

    @Test("push: true sends at once", arguments: LoopbackFamily.allCases)
    func pushedDataLeavesAtOnce(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let start = Clock.now
        try pair.stream.send("now")
        try pair.peer.waitUnread(3, timeout: 2)
        #expect(Clock.now - start < 0.1)
    }

    @Test(
        "waitForAck returns when the peer has acknowledged every byte: nothing is left unacknowledged", arguments: LoopbackFamily.allCases)
    func waitForAckMeansAcknowledged(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let data = [UInt8](repeating: 7, count: 3_000_000)
        let peer = pair.peer
        let reader = Background { try peer.receive(exactly: data.count, timeout: 20) }
        try pair.stream.send(data, waitForAck: true)
        let status = try pair.stream.status()
        #expect(status.amtUnackedData == 0)
        #expect(try reader.value(timeout: 20).get() == data)
    }

    @Test("waitForAck is woken by the kernel's acknowledgement report, not by polling", arguments: LoopbackFamily.allCases)
    func waitForAckIsPrompt(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let peer = pair.peer
        // The peer reads and acknowledges at once (TCP_QUICKACK after every read), so each
        // acknowledgement takes microseconds; without the kernel's report, the 200 ms safety
        // re-check would make 100 sends take 20 s.
        let reader = Background { () throws -> Int in
            var total = 0
            while total < 10_000 {
                peer.setQuickAck()
                total += try peer.receive(max: 10_000).count
                peer.setQuickAck()
            }
            return total
        }
        let start = Clock.now
        for _ in 0..<100 {
            try pair.stream.send([UInt8](repeating: 1, count: 100), waitForAck: true)
        }
        let elapsed = Clock.now - start
        #expect(elapsed < 2, "100 acknowledged sends took \(elapsed) s")
        #expect(try reader.value().get() == 10_000)
    }

    @Test("waitForAck waits for the peer: it does not return while the peer's window is closed")
    func waitForAckWaitsForThePeer() throws {
        let listener = try Peer.listener()
        listener.setReceiveBuffer(4096)
        let stream = try TCPStream()
        try stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        let peer = try listener.accept()
        // Fill the peer's small window so that more data cannot be acknowledged.
        let filler = [UInt8](repeating: 1, count: 200_000)
        let fill = Background { try stream.send(filler) }
        usleep(200_000)
        let acknowledged = Background { try stream.send([2, 2, 2], waitForAck: true) }
        usleep(300_000)
        #expect(!acknowledged.isFinished, "send with waitForAck returned although the peer had not read")
        let all = try peer.receive(exactly: filler.count + 3, timeout: 20)
        #expect(all.prefix(filler.count) == filler[...])
        #expect(all.suffix(3) == [2, 2, 2])
        try fill.value().get()  // the filler went out whole
        try acknowledged.value().get()
        #expect(try stream.status().amtUnackedData == 0)
    }

    @Test("the async waitForAck send waits for the peer too, and returns once it has read")
    func asyncWaitForAckWaitsForThePeer() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let listener = try Peer.listener()
            listener.setReceiveBuffer(4096)
            let stream = try TCPStream()
            try await stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
            let peer = try listener.accept()
            let filler = [UInt8](repeating: 1, count: 200_000)  // more than the peer's window
            let fill = Background { try stream.send(filler) }
            await TestExecutor.sleep(for: .milliseconds(200))
            let returned = Mutex(false)
            let acknowledged = Task(executorPreference: TestExecutor.shared) {
                try await stream.send([2, 2, 2], waitForAck: true)
                returned.withLock { $0 = true }
            }
            await TestExecutor.sleep(for: .milliseconds(300))
            #expect(!returned.withLock { $0 }, "the async send with waitForAck returned although the peer had not read")
            let all = try peer.receive(exactly: filler.count + 3, timeout: 20)
            #expect(all.suffix(3) == [2, 2, 2])
            try await acknowledged.value
            #expect(returned.withLock { $0 })
            try fill.value().get()
            #expect(try stream.status().amtUnackedData == 0)
        }
    }

    @Test("a plain send returns before the acknowledgement (the contrast to waitForAck)")
    func plainSendDoesNotWait() throws {
        let listener = try Peer.listener()
        listener.setReceiveBuffer(4096)
        let stream = try TCPStream()
        try stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        let peer = try listener.accept()
        try stream.send([UInt8](repeating: 3, count: 50_000))
        #expect(try stream.status().amtUnackedData > 0)
        _ = try peer.receive(exactly: 50_000)
    }

    @Test("String sends as UTF-8", arguments: LoopbackFamily.allCases)
    func stringIsUTF8(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        try pair.stream.send("Grüße ☕︎")
        let expected = Array("Grüße ☕︎".utf8)
        #expect(try pair.peer.receive(exactly: expected.count) == expected)
    }

    @Test("empty data is invalidLength", arguments: LoopbackFamily.allCases)
    func emptyDataIsInvalidLength(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        expectMacTCPError(.invalidLength) { try pair.stream.send([UInt8]()) }
        expectMacTCPError(.invalidLength) { try pair.stream.send("") }
    }

    @Test("sends from several threads at once are serialised: each arrives whole, none is left waiting")
    func concurrentSendsAreWhole() throws {
        let listener = try Peer.listener()
        listener.setReceiveBuffer(4096)
        let stream = try TCPStream()
        try stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        let peer = try listener.accept()
        let size = 1 << 20
        let senders = (0..<4).map { index in
            Background { try stream.send([UInt8](repeating: UInt8(index + 1), count: size)) }
        }
        let received = try peer.receive(exactly: 4 * size, timeout: 30)
        for sender in senders { _ = try sender.value(timeout: 10).get() }
        // Four runs of one value each: no send was cut into by another.
        var runs: [UInt8] = []
        for byte in received where runs.last != byte { runs.append(byte) }
        #expect(runs.count == 4 && Set(runs) == [1, 2, 3, 4], "runs: \(runs.prefix(20))")
    }

    @Test("receives from two threads at once take turns: every byte once, none is left waiting", arguments: LoopbackFamily.allCases)
    func concurrentReceivesTakeTurns(_ family: LoopbackFamily) throws {
        let pair = try activePair(family: family)
        let stream = pair.stream
        let readers = (0..<2).map { _ in
            Background { () throws -> [UInt8] in
                var got: [UInt8] = []
                while got.count < 50 { got += try stream.receive(timeout: 10, maxLength: 1).data }
                return got
            }
        }
        for index in 0..<100 {
            try pair.peer.send([UInt8(index)])
            usleep(1000)
        }
        let parts = try readers.map { try $0.value(timeout: 20).get() }
        #expect((parts[0] + parts[1]).sorted() == (0..<100).map { UInt8($0) })
    }
}
