// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import MacTCP
import Testing

/// The ULP timer, on a peer that keeps its window closed (loopback cannot lose packets; a
/// closed window keeps data unacknowledged just the same), over IPv4 and IPv6.
@Suite("ULP timeout", .timeLimit(.minutes(1)))
struct ULPTimeoutTests {
    private func stalledPair(_ options: TCPOpenOptions, log: EventLog, _ family: LoopbackFamily) throws -> (
        TCPStream, Peer, Background<Void>
    ) {
        let listener = try family.listener()
        listener.setReceiveBuffer(4096)
        let stream = try TCPStream()
        log.attach(to: stream)
        try stream.activeOpen(address: family.address, remotePort: listener.localPort, timeout: .seconds(5), options: options)
        let peer = try listener.accept()
        let sending = Background { try stream.send([UInt8](repeating: 4, count: 20_000_000)) }
        return (stream, peer, sending)
    }

    @Test("report action: .ulpTimeout each period while data stays unacknowledged; nothing is aborted", arguments: LoopbackFamily.allCases)
    func report(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let (stream, peer, sending) = try stalledPair(
            TCPOpenOptions(ulpTimeout: .milliseconds(500), ulpAction: .report), log: log, family)
        let start = Clock.now
        try log.wait(for: .ulpTimeout, count: 1, timeout: 10)
        let first = Clock.now
        try log.wait(for: .ulpTimeout, count: 3, timeout: 10)
        #expect(Clock.now - start >= 1.0)
        // One report per ULP period (500 ms, looked at every 100 ms): two periods between the
        // first and the third, with room for a busy machine, never four.
        let twoPeriods = Clock.now - first
        #expect(twoPeriods >= 0.9 && twoPeriods < 1.7, "the first to the third report took \(twoPeriods) s")
        #expect(log.count(.terminate) == 0)
        #expect(try stream.status().state == .established)
        // The peer reads again: everything arrives and the events stop.
        #expect(try peer.receive(exactly: 20_000_000, timeout: 30).count == 20_000_000)
        _ = try sending.value(timeout: 30).get()
        log.settle(1.2)
        let settled = log.count(.ulpTimeout)
        log.settle(1.2)
        #expect(log.count(.ulpTimeout) == settled)
        #expect(log.count(.terminate) == 0)
    }

    @Test(
        "abort action: the connection ends with .terminate(ulpTimeout); the blocked send gets connectionTerminated",
        arguments: LoopbackFamily.allCases)
    func abort(_ family: LoopbackFamily) throws {
        let log = EventLog()
        let (stream, peer, sending) = try stalledPair(TCPOpenOptions(ulpTimeout: .seconds(1), ulpAction: .abort), log: log, family)
        _ = peer
        let start = Clock.now
        try log.wait(for: .terminate, timeout: 15)
        let elapsed = Clock.now - start
        #expect(elapsed >= 0.9 && elapsed < 10)
        #expect(log.details(.terminate) == [TCPTerminationReason.ulpTimeout.rawValue])
        #expect(throws: MacTCPError.connectionTerminated) { try sending.value().get() }
        expectMacTCPError(.connectionTerminated) { _ = try stream.receive(timeout: 1) }
    }

    /// A peer whose window is closed: it reads nothing, with the smallest receive buffer.
    private func closedWindowPair(_ options: TCPOpenOptions, _ family: LoopbackFamily) throws -> (TCPStream, Peer) {
        let listener = try family.listener()
        listener.setReceiveBuffer(1)
        let stream = try TCPStream()
        try stream.activeOpen(address: family.address, remotePort: listener.localPort, timeout: .seconds(5), options: options)
        return (stream, try listener.accept())
    }

    @Test(
        "waitForAck is bounded by the ULP timeout: commandTimeout when nothing more is acknowledged, the data stays sent",
        arguments: LoopbackFamily.allCases)
    func waitForAckBound(_ family: LoopbackFamily) throws {
        let (stream, peer) = try closedWindowPair(TCPOpenOptions(ulpTimeout: .seconds(1), ulpAction: .report), family)
        let data = [UInt8](repeating: 7, count: 12_000)
        let start = Clock.now
        let sending = Background { try stream.send(data, waitForAck: true) }
        let result = try sending.value(timeout: 15)
        let elapsed = Clock.now - start
        #expect(throws: MacTCPError.commandTimeout) { try result.get() }
        #expect(elapsed >= 0.9, "gave up after \(elapsed) s, before the ULP timeout")
        #expect(try stream.status().state == .established)
        // Nothing was lost: the peer reads every byte once it reads at all.
        #expect(try peer.receive(exactly: data.count, timeout: 10) == data)
    }

    @Test("the async waitForAck send has the same bound", arguments: LoopbackFamily.allCases)
    func asyncWaitForAckBound(_ family: LoopbackFamily) async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let (stream, peer) = try closedWindowPair(TCPOpenOptions(ulpTimeout: .seconds(1), ulpAction: .report), family)
            let data = [UInt8](repeating: 8, count: 12_000)
            let start = Clock.now
            await #expect(throws: MacTCPError.commandTimeout) { try await stream.send(data, waitForAck: true) }
            #expect(Clock.now - start >= 0.9)
            #expect(try peer.receive(exactly: data.count, timeout: 10) == data)
        }
    }
}
