// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import MacTCP
import Synchronization
import Testing

/// The async forms: same semantics as the blocking calls, cancellation, events as a sequence.
///
/// The tests run on an executor of their own (`TestExecutor`): the blocking suites running
/// alongside occupy Swift's cooperative pool, and their deadlines must not depend on that.
@Suite("Async/await", .timeLimit(.minutes(1)))
struct AsyncTests {
    @Test("receive, send, close and end of stream through the async forms")
    func basics() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let pair = try activePair()
            try await pair.stream.send("ping")
            #expect(try pair.peer.receive(exactly: 4) == Array("ping".utf8))
            try pair.peer.send("pong")
            #expect(try await pair.stream.receive(timeout: .seconds(5)).data == Array("pong".utf8))
            try await pair.stream.close()
            #expect(try pair.stream.status().state == .finWait2)
            #expect(try pair.peer.receiveToEnd().isEmpty)
            try pair.peer.send("after your FIN")
            var answer: [UInt8] = []
            while answer.count < 14 { answer += try await pair.stream.receive(timeout: 5).data }
            pair.peer.shutdownWrite()
            await #expect(throws: MacTCPError.connectionClosing) { try await pair.stream.receive(timeout: 5) }
            await #expect(throws: MacTCPError.connectionClosing) { try await pair.stream.close() }
        }
    }

    @Test("urgent regions with their marks through the async receive")
    func urgent() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let pair = try activePair()
            try pair.peer.sendUrgent(Array("0123456789".utf8))
            try pair.peer.send("after")
            try waitUntil("15 unread") { try pair.stream.status().amtUnreadData == 15 }
            #expect(
                try await pair.stream.receive(timeout: 5, maxLength: 6)
                    == TCPReceived(data: Array("012345".utf8), urgent: true, mark: false))
            #expect(
                try await pair.stream.receive(timeout: 5, maxLength: 6) == TCPReceived(data: Array("6789".utf8), urgent: false, mark: true))
            #expect(try await pair.stream.receive(timeout: 5) == TCPReceived(data: Array("after".utf8), urgent: false, mark: false))
            let stream = pair.stream
            let begun = Clock.now
            let waiting = Task(executorPreference: TestExecutor.shared) { try await stream.receive(timeout: 5) }
            await TestExecutor.sleep(for: .milliseconds(50))
            let sent = Clock.now - begun
            try pair.peer.sendUrgent(Array("!".utf8))
            #expect(
                try await waiting.value == TCPReceived(data: Array("!".utf8), urgent: true, mark: true),
                "the urgent byte was sent \(sent) s after the receive began"
            )
        }
    }

    @Test("an async receive waits for the turn of a blocking one, then gets the next data; its timeout holds meanwhile")
    func receiveTurn() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let pair = try activePair()
            let stream = pair.stream
            let holder = Background { try stream.receive(timeout: 20).data }
            await TestExecutor.sleep(for: .milliseconds(300))
            await #expect(throws: MacTCPError.commandTimeout) { try await stream.receive(timeout: .milliseconds(200)) }
            let waiting = Task(executorPreference: TestExecutor.shared) { try await stream.receive(timeout: 20).data }
            await TestExecutor.sleep(for: .milliseconds(300))
            try pair.peer.send("one")
            #expect(try holder.value().get() == Array("one".utf8))
            try pair.peer.send("two")
            #expect(try await waiting.value == Array("two".utf8))
        }
    }

    @Test("a reset while an async receive waits: connectionTerminated")
    func reset() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let pair = try activePair()
            let stream = pair.stream
            let begun = Clock.now
            let waiting = Task(executorPreference: TestExecutor.shared) { try await stream.receive(timeout: 5) }
            await TestExecutor.sleep(for: .milliseconds(50))
            let sent = Clock.now - begun
            pair.peer.reset()
            await #expect(throws: MacTCPError.connectionTerminated, "the reset was sent \(sent) s after the receive began") {
                try await waiting.value
            }
            await #expect(throws: MacTCPError.connectionTerminated) { try await stream.send("x") }
        }
    }

    @Test("the async receive times out with commandTimeout")
    func timeout() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let pair = try activePair()
            let start = Clock.now
            await #expect(throws: MacTCPError.commandTimeout) { try await pair.stream.receive(timeout: .milliseconds(150)) }
            #expect(Clock.now - start >= 0.14)
            await #expect(throws: MacTCPError.invalidLength) { try await pair.stream.receive(timeout: -1.0) }
        }
    }

    @Test("async active open: refused is openFailed; several async passive opens share one port")
    func opens() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let probe = try Peer.listener()
            let closedPort = probe.localPort
            probe.close()
            let stream = try TCPStream()
            await #expect(throws: MacTCPError.openFailed) {
                try await stream.activeOpen(host: IPv4.loopback, remotePort: closedPort, timeout: 5)
            }
            let servers = try (0..<3).map { _ in try TCPStream() }
            try servers[0].passiveOpen(timeout: 5)
            let port = servers[0].getSockName().port
            try servers[1].passiveOpen(port: port, timeout: 5)
            try servers[2].passiveOpen(port: port, timeout: 5)
            let clients = try (0..<3).map { _ in try TCPStream() }
            for (index, client) in clients.enumerated() {
                try await client.activeOpen(host: IPv4.loopback, remotePort: port, timeout: 5.0)
                try await servers[index].wait()
                try await client.send("client \(index)")
            }
            for (index, server) in servers.enumerated() {
                #expect(String(decoding: try await server.receive(timeout: 5).data, as: UTF8.self) == "client \(index)")
            }
        }
    }

    @Test("events as an async sequence: the ASR's events, in the same order, ending at release")
    func eventSequence() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let log = EventLog()
            let stream = try TCPStream()
            log.attach(to: stream)
            let events = stream.events
            let collected = Task(executorPreference: TestExecutor.shared) { () -> [TCPEvent] in
                var kinds: [TCPEvent] = []
                for await (event, _) in events { kinds.append(event) }
                return kinds
            }
            try stream.passiveOpen(timeout: 5)
            let peer = try Peer.connect(port: stream.getSockName().port)
            try await stream.wait()
            try peer.sendUrgent(Array("U".utf8))
            try log.wait(for: .urgent)
            _ = try await stream.receive(timeout: 5)
            try peer.send("data")
            try log.wait(for: .dataArrival)
            _ = try await stream.receive(timeout: 5)
            peer.shutdownWrite()
            try log.wait(for: .closing)
            try await stream.close()
            try log.wait(for: .terminate)
            stream.release()
            let kinds = await collected.value
            #expect(kinds == log.kinds)
            #expect(kinds.first == .passiveOpenDone)
            #expect(kinds.suffix(2) == [.closing, .terminate])
            #expect(kinds.filter { $0 == .urgent }.count == 1)
            #expect(kinds.contains(.dataArrival))
        }
    }
}

/// Cancellation: prompt, and nothing lost.
///
/// The latency measured is the library's: the tests run on an executor of their own, since
/// the blocking suites running alongside occupy Swift's cooperative pool (two threads here),
/// and a resumed task would otherwise wait for one of those threads.
@Suite("Async cancellation", .timeLimit(.minutes(1)))
struct AsyncCancellationTests {
    /// Cancels `task` and returns how long it took to finish, and how it finished.
    static func cancel<T: Sendable>(
        _ task: Task<T, any Error>,
        _ what: String = #function
    ) async -> (Double, Result<T, any Error>) {
        let start = Clock.now
        task.cancel()
        let result = await task.result
        let latency = Clock.now - start
        print("cancellation latency, \(what): \(String(format: "%.3f", latency * 1000)) ms")
        return (latency, result)
    }

    @Test("a cancelled receive throws CancellationError within 100 ms and consumes nothing")
    func receive() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let pair = try activePair()
            let stream = pair.stream
            let task = Task(executorPreference: TestExecutor.shared) { try await stream.receive(timeout: .zero) }
            await TestExecutor.sleep(for: .milliseconds(100))
            let (latency, result) = await Self.cancel(task)
            #expect(latency < 0.1, "cancellation took \(latency) s")
            #expect(throws: CancellationError.self) { try result.get() }
            try pair.peer.send("kept")
            #expect(try await stream.receive(timeout: 5).data == Array("kept".utf8))
        }
    }

    @Test("a cancelled passive-open wait stops waiting and leaves the stream reusable")
    func passiveOpen() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let log = EventLog()
            let stream = try TCPStream()
            log.attach(to: stream)
            try stream.passiveOpen()
            let port = stream.getSockName().port
            let task = Task(executorPreference: TestExecutor.shared) { try await stream.wait() }
            await TestExecutor.sleep(for: .milliseconds(100))
            let (latency, result) = await Self.cancel(task)
            #expect(latency < 0.1, "cancellation took \(latency) s")
            #expect(throws: CancellationError.self) { try result.get() }
            #expect(stream.isDone)
            #expect(try stream.status().state == .closed)
            do {
                // Nothing listens any more. (Said with the ports, should it ever connect: a
                // client whose own port is `port` connects to itself.)
                let peer = try Peer.connect(port: port)
                Issue.record("connected after the cancelled passive open: from port \(peer.localPort) to \(port)")
            } catch is Peer.ConnectFailure {}
            try log.wait(for: .passiveOpenDone)
            try await stream.wait()  // nothing more to report
            try stream.passiveOpen(port: port, timeout: 5)
            let peer = try Peer.connect(port: port)
            try await stream.wait()
            try peer.send("again")
            #expect(try await stream.receive(timeout: 5).data == Array("again".utf8))
        }
    }

    @Test("a cancelled active open abandons the attempt; the stream opens again")
    func activeOpen() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            // A listener with a full backlog drops further SYNs: the connect stays pending.
            let listener = try Peer.listener(backlog: 0)
            let queued = try Peer.connect(port: listener.localPort)
            _ = queued
            let stream = try TCPStream()
            let port = listener.localPort
            let task = Task(executorPreference: TestExecutor.shared) {
                try await stream.activeOpen(host: IPv4.loopback, remotePort: port, timeout: 30)
            }
            await TestExecutor.sleep(for: .milliseconds(200))
            let (latency, result) = await Self.cancel(task)
            #expect(latency < 0.1, "cancellation took \(latency) s")
            #expect(throws: CancellationError.self) { try result.get() }
            #expect(try stream.status().state == .closed)
            let other = try Peer.listener()
            try await stream.activeOpen(host: IPv4.loopback, remotePort: other.localPort, timeout: 5)
        }
    }

    @Test("a send cancelled while waiting for its turn sends nothing; one cancelled midway aborts the connection")
    func send() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let log = EventLog()
            let listener = try Peer.listener()
            listener.setReceiveBuffer(4096)
            let stream = try TCPStream()
            log.attach(to: stream)
            try await stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
            let peer = try listener.accept()
            let big = Task(executorPreference: TestExecutor.shared) { try await stream.send([UInt8](repeating: 1, count: 20_000_000)) }
            await TestExecutor.sleep(for: .milliseconds(200))
            let queued = Task(executorPreference: TestExecutor.shared) { try await stream.send("never") }
            await TestExecutor.sleep(for: .milliseconds(50))
            let (queuedLatency, queuedResult) = await Self.cancel(queued)
            #expect(queuedLatency < 0.1)
            #expect(throws: CancellationError.self) { try queuedResult.get() }
            #expect(try stream.status().state == .established)
            let (latency, result) = await Self.cancel(big)
            #expect(latency < 0.1, "cancellation took \(latency) s")
            #expect(throws: CancellationError.self) { try result.get() }
            try log.wait(for: .terminate)
            #expect(log.details(.terminate) == [TCPTerminationReason.ulpAbort.rawValue])
            var received = 0
            while let chunk = try? peer.receive(max: 1 << 20, timeout: 5), !chunk.isEmpty {
                #expect(!chunk.contains(UInt8(ascii: "n")))
                received += chunk.count
            }
            #expect(received < 20_000_000)
        }
    }

    @Test("a cancelled close leaves the connection half-closed")
    func close() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let listener = try Peer.listener()
            listener.setReceiveBuffer(4096)
            let stream = try TCPStream()
            try await stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
            let peer = try listener.accept()
            try await stream.send([UInt8](repeating: 2, count: 100_000))
            let task = Task(executorPreference: TestExecutor.shared) { try await stream.close() }
            await TestExecutor.sleep(for: .milliseconds(200))
            let (latency, result) = await Self.cancel(task)
            #expect(latency < 0.1, "cancellation took \(latency) s")
            #expect(throws: CancellationError.self) { try result.get() }
            await #expect(throws: MacTCPError.connectionClosing) { try await stream.close() }
            #expect(try peer.receiveToEnd(timeout: 20).count == 100_000)
            try peer.send("still receiving")
            #expect(try await stream.receive(timeout: 5).data == Array("still receiving".utf8))
        }
    }
}
