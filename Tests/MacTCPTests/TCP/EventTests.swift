// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import MacTCP
import Synchronization
import Testing

@Suite("ASR events", .timeLimit(.minutes(1)))
struct EventTests {
    @Test(".dataArrival comes once, and not again until a receive has returned", arguments: LoopbackFamily.allCases)
    func dataArrivalOnce(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try activePair(family: family, events: log)
        try pair.peer.send("one")
        try log.wait(for: .dataArrival)
        try pair.peer.send("two")
        try pair.peer.send("three")
        log.settle()
        #expect(log.count(.dataArrival) == 1)
        _ = try pair.stream.receive(timeout: 5)
        try pair.peer.send("four")
        try log.wait(for: .dataArrival, count: 2)
        log.settle()
        #expect(log.count(.dataArrival) == 2)
    }

    @Test("no .dataArrival while a receive is in progress; a timed-out receive re-arms it", arguments: LoopbackFamily.allCases)
    func noDataArrivalDuringReceive(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try activePair(family: family, events: log)
        let stream = pair.stream
        let pending = Background { try stream.receive(timeout: 5) }
        usleep(100_000)
        try pair.peer.send("x")
        _ = try pending.value().get()
        log.settle()
        #expect(log.count(.dataArrival) == 0)
        expectMacTCPError(.commandTimeout) { _ = try stream.receive(timeout: 0.05) }
        try pair.peer.send("y")
        try log.wait(for: .dataArrival)
    }

    @Test("events run off the caller's thread, one at a time, in order: data, closing, terminate", arguments: LoopbackFamily.allCases)
    func deliveryRules(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try passivePair(family: family, events: log)
        let caller = UInt(bitPattern: Int(pthread_self()))
        try pair.peer.send("data")
        try log.wait(for: .dataArrival)
        _ = try pair.stream.receive(timeout: 5)
        pair.peer.shutdownWrite()
        try log.wait(for: .closing)
        try pair.stream.close()
        try log.wait(for: .terminate)
        log.settle()
        #expect(!log.threadIDs.contains(caller))
        #expect(log.maximumOverlap == 1)
        #expect(log.kinds == [.passiveOpenDone, .dataArrival, .closing, .terminate])
        #expect(log.details(.terminate) == [TCPTerminationReason.ulpClose.rawValue])
    }

    @Test(
        "exactly one .terminate when the peer resets right after our close while a receive is blocked (100 races)",
        arguments: LoopbackFamily.allCases)
    func oneTerminateAfterRacingReset(_ family: LoopbackFamily) throws {
        var counts: [Int: Int] = [:]
        for _ in 0..<100 {
            let log = EventLog()
            let pair = try activePair(family: family, events: log)
            let stream = pair.stream
            let receiving = Background { try stream.receive(timeout: 5) }
            usleep(2000)
            try? stream.close()
            pair.peer.reset()
            _ = try receiving.value(timeout: 10)
            try log.wait(for: .terminate)
            log.settle(0.02)
            counts[log.count(.terminate), default: 0] += 1
            stream.release()
        }
        #expect(counts == [1: 100], "runs by number of .terminate events: \(counts)")
    }

    @Test(".closing comes once also when the peer's FIN follows our close", arguments: LoopbackFamily.allCases)
    func closingAfterOurClose(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try activePair(family: family, events: log)
        try pair.stream.close()
        try pair.peer.send("bye")
        pair.peer.shutdownWrite()
        try log.wait(for: .dataArrival)
        #expect(try pair.stream.receive(timeout: 5).data == Array("bye".utf8))
        try log.wait(for: .closing)
        try log.wait(for: .terminate)
        log.settle()
        #expect(log.count(.closing) == 1)
        #expect(log.count(.terminate) == 1)
    }

    @Test("a blocking receive made from inside the ASR works")
    func receiveInsideASR() throws {
        let received = Mutex<[UInt8]>([])
        let stream = try TCPStream()
        stream.asr = { event, _ in
            guard event == .dataArrival else { return }
            if let result = try? stream.receive(timeout: 5) {
                received.withLock { $0 += result.data }
            }
        }
        try stream.passiveOpen(timeout: 5)
        let peer = try Peer.connect(port: stream.getSockName().port)
        try stream.wait()
        try peer.send("inside the ASR")
        try waitUntil("the ASR's receive") { received.withLock { $0.count } == 14 }
        #expect(received.withLock { $0 } == Array("inside the ASR".utf8))
        stream.asr = nil
    }

    @Test("close, send and abort from inside the ASR")
    func callsInsideASR() throws {
        let log = EventLog()
        let stream = try TCPStream()
        let outcome = Mutex<[String]>([])
        log.attach(to: stream) { event, _ in
            do {
                switch event {
                case .closing:
                    try stream.send("last", waitForAck: true)
                    try stream.close()
                    outcome.withLock { $0.append("closed") }
                default:
                    break
                }
            } catch {
                outcome.withLock { $0.append("\(error)") }
            }
        }
        let listener = try Peer.listener()
        try stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        let peer = try listener.accept()
        peer.shutdownWrite()
        #expect(try peer.receiveToEnd() == Array("last".utf8))
        try log.wait(for: .terminate)
        #expect(outcome.withLock { $0 } == ["closed"])
        #expect(log.details(.terminate) == [TCPTerminationReason.ulpClose.rawValue])
    }

    @Test("every call made from inside the ASR while the stream is being released is invalidStreamPtr, never a trap")
    func callsInsideASRDuringRelease() throws {
        let log = EventLog()
        let stream = try TCPStream()
        let outcomes = Mutex<[MacTCPError?]>([])
        log.attach(to: stream) { event, _ in
            guard event == .terminate else { return }
            // release() is under way (it delivered this event): every call must say so.
            let calls: [() throws -> Void] = [
                { try stream.send("x") },
                { _ = try stream.receive(timeout: .milliseconds(10)) },
                { try stream.close() },
                { try stream.abort() },
                { _ = try stream.status() },
                { try stream.passiveOpen(port: 0) },
                { try stream.activeOpen(host: IPv4.loopback, remotePort: 9, timeout: .seconds(1)) },
                { try stream.wait() },
            ]
            for call in calls {
                do {
                    try call()
                    outcomes.withLock { $0.append(nil) }
                } catch {
                    outcomes.withLock { $0.append(error as? MacTCPError) }
                }
            }
        }
        let pair = try Pair(
            stream: stream,
            peer: {
                let listener = try Peer.listener()
                try stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
                return try listener.accept()
            }())
        pair.stream.release()
        try log.wait(for: .terminate)
        try waitUntil("the calls made inside the ASR") { outcomes.withLock { $0.count } == 8 }
        #expect(outcomes.withLock { $0 } == Array(repeating: MacTCPError.invalidStreamPtr, count: 8))
        #expect(stream.getSockName().host == 0 && stream.getSockName().port == 0)
    }

    @Test("no event is lost when many arrive quickly: every region and every connection is reported")
    func nothingDropped() throws {
        let log = EventLog()
        let stream = try TCPStream()
        log.attach(to: stream) { _, _ in usleep(20_000) }  // a slow ASR
        for round in 0..<5 {
            try stream.passiveOpen(timeout: 5)
            let peer = try Peer.connect(port: stream.getSockName().port)
            try stream.wait()
            peer.reset()
            try waitUntil("the reset") { (try? stream.status().state) == .closed }
            _ = round
        }
        try log.wait(for: .terminate, count: 5, timeout: 10)
        #expect(log.count(.passiveOpenDone) == 5)
        #expect(log.details(.terminate) == Array(repeating: 2, count: 5))
    }
}
