// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import MacTCP
import Testing

@Suite("Basic round trip", .timeLimit(.minutes(1)))
struct SmokeTests {
    @Test func activeOpenSendReceive() throws {
        let pair = try activePair()
        try pair.stream.send("hello")
        #expect(try pair.peer.receive(exactly: 5) == Array("hello".utf8))
        try pair.peer.send("world")
        let result = try pair.stream.receive(timeout: .seconds(5))
        #expect(result == TCPReceived(data: Array("world".utf8), urgent: false, mark: false))
    }

    @Test func passiveOpenSendReceive() throws {
        let pair = try passivePair()
        try pair.peer.send("ping")
        let result = try pair.stream.receive(timeout: 5)
        #expect(result.data == Array("ping".utf8))
        try pair.stream.send("pong")
        #expect(try pair.peer.receive(exactly: 4) == Array("pong".utf8))
    }
}
