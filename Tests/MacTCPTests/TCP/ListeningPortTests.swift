// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import MacTCP
import Synchronization
import Testing

/// The kept port (`TCPListeningPort`): clients who arrive while every stream is busy wait in
/// the kernel's queue and are served in order; closing it resets those still queued; without
/// it, MacTCP's rule.
@Suite("A port kept listening", .serialized, .timeLimit(.minutes(1)))
struct ListeningPortTests {
    /// A pool of `size` streams on `port`, each serving one connection after another: the
    /// request's bytes back, then an orderly close. Returns the number served when `stop`.
    private func servePool(size: Int, port: UInt16, stop: StopFlag) -> [Background<Int>] {
        (0..<size).map { _ in
            Background { () throws -> Int in
                let stream = try TCPStream()
                defer { stream.release() }
                var served = 0
                while !stop.isSet {
                    do {
                        try stream.passiveOpen(port: port, timeout: .milliseconds(500))
                        try stream.wait()
                    } catch MacTCPError.commandTimeout {
                        continue
                    }
                    let request = try stream.receive(timeout: .seconds(5))
                    try stream.send(request.data, push: true)
                    try stream.close()
                    _ = try? stream.receive(timeout: .seconds(5))  // to the peer's close
                    served += 1
                }
                return served
            }
        }
    }

    @Test("a pool of 2 streams serves 40 clients arriving at once: none refused or reset, every reply right")
    func poolServesEveryone() throws {
        let listening = try TCPListeningPort(port: 0, backlog: 64)
        defer { listening.close() }
        let stop = StopFlag()
        let pool = servePool(size: 2, port: listening.port, stop: stop)
        let clients = (0..<40).map { index in
            Background { () throws -> String in
                let client = try Peer.connect(port: listening.port)
                defer { client.close() }
                try client.send("client \(index)")
                return String(decoding: try client.receiveToEnd(timeout: 20), as: UTF8.self)
            }
        }
        let replies = clients.map { client -> String in
            do { return try client.value(timeout: 30).get() } catch { return "failed: \(error)" }
        }
        stop.set()
        let served = pool.map { server -> String in
            do { return String(try server.value(timeout: 10).get()) } catch { return "failed: \(error)" }
        }
        #expect(replies == (0..<40).map { "client \($0)" }, "\(replies)")
        #expect(served.compactMap { Int($0) }.reduce(0, +) == 40, "\(served)")
    }

    @Test("mactcp listen --pool 1 --backlog 8: five clients at once are each echoed in turn")
    func toolBacklog() throws {
        let port = try Tool.freePort()
        let listen = try Tool.start(["listen", "--pool", "1", "--echo", "--backlog", "8", "--port", String(port)])
        defer { listen.send(SIGTERM) }
        try waitUntil(timeout: 10, "the tool to listen") { listen.errors.contains("listening on port") }
        let clients = try (0..<5).map { _ in try Peer.connect(port: port) }
        for (index, client) in clients.enumerated() {
            try client.send("client \(index)")
            client.shutdownWrite()
        }
        for (index, client) in clients.enumerated() {
            #expect(String(decoding: try client.receiveToEnd(timeout: 10), as: UTF8.self) == "client \(index)")
            client.close()
        }
        let bad = try Tool.start(["listen", "--backlog", "0"]).finish()
        #expect(bad.status == 64 && bad.err.contains("--backlog"))
    }

    @Test("without it, MacTCP's rule: a client arriving while the only stream is busy is refused")
    func withoutItRefused() throws {
        let stream = try TCPStream()
        defer { stream.release() }
        try stream.passiveOpen(port: 0)
        let port = stream.getSockName().port
        let first = try Peer.connect(port: port)
        defer { first.close() }
        try stream.wait()
        #expect(throws: (any Error).self) {
            let second = try Peer.connect(port: port, timeout: 2)
            defer { second.close() }
            _ = try second.receive(timeout: 2)  // reset if it was queued before the listener stopped
        }
    }

    @Test("queued clients are taken in the order they arrived, by streams that passive-open later")
    func takenInOrder() throws {
        let listening = try TCPListeningPort(port: 0, backlog: 16)
        defer { listening.close() }
        var clients: [Peer] = []
        for _ in 0..<5 { clients.append(try Peer.connect(port: listening.port)) }
        defer { for peer in clients { peer.close() } }
        for client in clients {
            let stream = try TCPStream()
            defer { stream.release() }
            try stream.passiveOpen(port: listening.port, timeout: .seconds(5))
            try stream.wait()
            #expect(stream.getSockName().port == listening.port)
            #expect(try stream.status().remotePort == client.localPort)
            try stream.abort()
        }
    }

    @Test("close resets the clients still queued and the port stops listening; a stream still waiting keeps waiting")
    func closeResetsQueued() throws {
        let listening = try TCPListeningPort(port: 0)
        let port = listening.port
        let queued = try (0..<3).map { _ in try Peer.connect(port: port) }
        defer { for peer in queued { peer.close() } }
        listening.close()
        #expect(!listening.isOpen)
        for client in queued {
            #expect(throws: (any Error).self) { _ = try client.receive(timeout: 5) }
            #expect(client.socketError() == ECONNRESET || errno == ECONNRESET)
        }
        #expect(throws: (any Error).self) { try Peer.connect(port: port, timeout: 2).close() }
        // A stream waiting when the kept port ends keeps waiting, by MacTCP's rule.
        let again = try TCPListeningPort(port: port)
        let stream = try TCPStream()
        defer { stream.release() }
        try stream.passiveOpen(port: port)
        again.close()
        let client = try Peer.connect(port: port)
        defer { client.close() }
        try stream.wait()
        #expect(try stream.status().remotePort == client.localPort)
        listening.close()  // twice: nothing more
    }

    @Test("a backlog of 1 holds 2 completed connections; a third client's SYN waits (dropped, retried), it is not reset")
    func backlogBound() throws {
        let listening = try TCPListeningPort(port: 0, backlog: 1)
        defer { listening.close() }
        let held = try (0..<2).map { _ in try Peer.connect(port: listening.port) }
        defer { for peer in held { peer.close() } }
        #expect(throws: (any Error).self) { try Peer.connect(port: listening.port, timeout: 0.8).close() }
        // Once a stream takes one, the third client's retried SYN is answered.
        let stream = try TCPStream()
        defer { stream.release() }
        try stream.passiveOpen(port: listening.port, timeout: .seconds(5))
        try stream.wait()
        let third = Background { () throws -> UInt16 in
            let client = try Peer.connect(port: listening.port, timeout: 10)
            defer { client.close() }
            return client.localPort
        }
        #expect(try third.value(timeout: 15).get() != 0)
    }

    @Test("a remote filter still resets a queued client it does not accept; bad arguments are clear errors")
    func filterAndValidation() throws {
        let listening = try TCPListeningPort(port: 0)
        defer { listening.close() }
        let stranger = try Peer.connect(port: listening.port, fromHost: 0x7F00_0002)
        defer { stranger.close() }
        let stream = try TCPStream()
        defer { stream.release() }
        try stream.passiveOpen(port: listening.port, remoteHost: IPv4.loopback, timeout: .seconds(5))
        let friend = try Peer.connect(port: listening.port)
        defer { friend.close() }
        try stream.wait()
        #expect(try stream.status().remotePort == friend.localPort)
        #expect(throws: (any Error).self) { _ = try stranger.receive(timeout: 5) }
        #expect(throws: MacTCPError.invalidLength) { try TCPListeningPort(port: 0, backlog: 0) }
        #expect(throws: MacTCPError.invalidLength) { try TCPListeningPort(port: 0, backlog: 70_000) }
        let taken = try Peer.listener()
        defer { taken.close() }
        #expect(throws: MacTCPError.duplicateSocket) { try TCPListeningPort(port: taken.localPort) }
    }
}

/// A flag the pool's threads look at.
final class StopFlag: Sendable {
    private let flag = Atomic(false)
    var isSet: Bool { flag.load(ordering: .relaxed) }
    func set() { flag.store(true, ordering: .relaxed) }
}
