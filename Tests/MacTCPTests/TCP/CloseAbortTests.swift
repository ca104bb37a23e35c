// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP
import Testing

@Suite("Close, abort and release", .timeLimit(.minutes(1)))
struct CloseAbortTests {
    @Test("close is a half-close: it returns once our FIN is acknowledged and receiving goes on", arguments: LoopbackFamily.allCases)
    func halfCloseThenReceive(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try activePair(family: family, events: log)
        try pair.stream.send("request")
        try pair.stream.close()
        #expect(try pair.stream.status().state == .finWait2)
        // The peer sees our data then end of stream, and answers afterwards.
        #expect(try pair.peer.receiveToEnd() == Array("request".utf8))
        try pair.peer.send("response after your FIN")
        var answer: [UInt8] = []
        while answer.count < 23 { answer += try pair.stream.receive(timeout: 5).data }
        #expect(answer == Array("response after your FIN".utf8))
        expectMacTCPError(.connectionClosing) { try pair.stream.send("more") }
        expectMacTCPError(.connectionClosing) { try pair.stream.close() }
        pair.peer.shutdownWrite()
        expectMacTCPError(.connectionClosing) { _ = try pair.stream.receive(timeout: 5) }
        try log.wait(for: .terminate)
        log.settle()
        #expect(log.count(.closing) == 1)
        #expect(log.details(.terminate) == [TCPTerminationReason.ulpClose.rawValue])
        #expect(log.kinds.firstIndex(of: .closing)! < log.kinds.firstIndex(of: .terminate)!)
        #expect(try pair.stream.status().state == .closed)
    }

    @Test("the peer closes first, then we close: .closing then .terminate(ulpClose), each once", arguments: LoopbackFamily.allCases)
    func peerClosesFirst(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try passivePair(family: family, events: log)
        pair.peer.shutdownWrite()
        expectMacTCPError(.connectionClosing) { _ = try pair.stream.receive(timeout: 5) }
        #expect(try pair.stream.status().state == .closeWait)
        try pair.stream.close()
        try log.wait(for: .terminate)
        log.settle()
        #expect(log.count(.closing) == 1)
        #expect(log.details(.terminate) == [TCPTerminationReason.ulpClose.rawValue])
        #expect(try pair.peer.receiveToEnd().isEmpty)
    }

    @Test("close waits for the acknowledgement of data the peer has not yet taken")
    func closeWaitsForData() throws {
        let listener = try Peer.listener()
        listener.setReceiveBuffer(4096)
        let stream = try TCPStream()
        try stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        let peer = try listener.accept()
        let data = [UInt8](repeating: 9, count: 400_000)
        let sending = Background {
            try stream.send(data)
            try stream.close()
        }
        usleep(300_000)
        #expect(!sending.isFinished, "close returned before the peer had taken the data")
        #expect(try peer.receiveToEnd(timeout: 20) == data)
        _ = try sending.value().get()
    }

    @Test("abort or release from another thread wakes a close() waiting for its acknowledgement at once")
    func cancelWakesClose() throws {
        for round in 0..<10 {
            let releasing = round % 2 == 1
            let listener = try Peer.listener()
            listener.setReceiveBuffer(4096)
            let stream = try TCPStream()
            try stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
            let peer = try listener.accept()
            try stream.send([UInt8](repeating: 7, count: 8_000))  // more than the peer's window
            let closing = Background { try stream.close() }
            usleep(250_000)
            #expect(!closing.isFinished, "close returned before the peer had taken the data")
            let start = Clock.now
            if releasing { stream.release() } else { try stream.abort() }
            #expect(throws: MacTCPError.connectionTerminated) { try closing.value().get() }
            // Woken by the socket itself, not by the look every 200 ms that backs the wait up
            // (which would come 150 ms after the abort).
            #expect(Clock.now - start < 0.1)
            _ = peer
        }
    }

    @Test("abort resets the connection, delivers .terminate(ulpAbort) and leaves the stream reusable", arguments: LoopbackFamily.allCases)
    func abortThenReuse(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try activePair(family: family, events: log)
        try pair.stream.abort()
        do {
            let got = try pair.peer.receive()
            Issue.record("the peer read \(got.count) bytes instead of a reset")
        } catch let failure as Peer.ReceiveFailure {
            #expect(failure.errno == ECONNRESET, "the peer's receive failed with \(failure)")
        }
        try log.wait(for: .terminate)
        #expect(log.details(.terminate) == [TCPTerminationReason.ulpAbort.rawValue])
        // Back to the initial state.
        expectMacTCPError(.connectionDoesntExist) { try pair.stream.send("x") }
        expectMacTCPError(.connectionDoesntExist) { _ = try pair.stream.receive(timeout: 1) }
        expectMacTCPError(.connectionDoesntExist) { try pair.stream.close() }
        expectMacTCPError(.connectionDoesntExist) { try pair.stream.abort() }
        #expect(try pair.stream.status().state == .closed)
        // The same stream opens again, actively and then passively.
        let listener = try Peer.listener()
        try pair.stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        let second = try listener.accept()
        try pair.stream.send("again")
        #expect(try second.receive(exactly: 5) == Array("again".utf8))
        try pair.stream.abort()
        try pair.stream.passiveOpen(timeout: 5)
        let third = try Peer.connect(port: pair.stream.getSockName().port)
        try pair.stream.wait()
        try third.send("third")
        #expect(try pair.stream.receive(timeout: 5).data == Array("third".utf8))
        try log.wait(for: .terminate, count: 2)
        log.settle()
        #expect(log.count(.terminate) == 2)
    }

    @Test("abort wakes calls blocked on the stream with connectionTerminated")
    func abortWakesBlockedCalls() throws {
        let listener = try Peer.listener()
        listener.setReceiveBuffer(4096)
        let stream = try TCPStream()
        try stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        let peer = try listener.accept()
        _ = peer
        let receiving = Background { try stream.receive(timeout: 10) }
        let sending = Background { try stream.send([UInt8](repeating: 0, count: 20_000_000)) }
        usleep(200_000)
        #expect(!receiving.isFinished && !sending.isFinished)
        let start = Clock.now
        try stream.abort()
        #expect(throws: MacTCPError.connectionTerminated) { try receiving.value().get() }
        #expect(throws: MacTCPError.connectionTerminated) { try sending.value().get() }
        #expect(Clock.now - start < 2)
    }

    @Test("release aborts, wakes blocked calls, and every later call is invalidStreamPtr", arguments: LoopbackFamily.allCases)
    func release(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let pair = try activePair(family: family, events: log)
        let stream = pair.stream
        let receiving = Background { try stream.receive(timeout: 10) }
        usleep(100_000)
        stream.release()
        #expect(throws: MacTCPError.connectionTerminated) { try receiving.value().get() }
        #expect(throws: Peer.ReceiveFailure.self) { _ = try pair.peer.receive() }
        try log.wait(for: .terminate)
        #expect(log.details(.terminate) == [TCPTerminationReason.ulpAbort.rawValue])
        expectMacTCPError(.invalidStreamPtr) { try stream.send("x") }
        expectMacTCPError(.invalidStreamPtr) { _ = try stream.receive(timeout: 1) }
        expectMacTCPError(.invalidStreamPtr) { try stream.close() }
        expectMacTCPError(.invalidStreamPtr) { try stream.abort() }
        expectMacTCPError(.invalidStreamPtr) { _ = try stream.status() }
        expectMacTCPError(.invalidStreamPtr) { try stream.passiveOpen() }
        expectMacTCPError(.invalidStreamPtr) { try stream.activeOpen(host: IPv4.loopback, remotePort: 9) }
        expectMacTCPError(.invalidStreamPtr) { try stream.wait() }
        #expect(stream.getSockName() == (0, 0))
        #expect(stream.isDone)
        stream.release()
    }

    @Test("dropping the last reference releases the stream: the peer gets a reset")
    func deinitReleases() throws {
        let listener = try Peer.listener()
        var stream: TCPStream? = try TCPStream()
        try stream!.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        let peer = try listener.accept()
        stream = nil
        #expect(throws: Peer.ReceiveFailure.self) { _ = try peer.receive() }
    }
}
