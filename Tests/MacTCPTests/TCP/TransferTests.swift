// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import MacTCP
import Synchronization
import Testing

/// A deterministic generator, so that a failure can be reproduced from its seed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite("Bulk transfer with urgent data", .timeLimit(.minutes(2)))
struct TransferTests {
    static let size = 4 << 20

    /// Random chunks, about one in five sent as urgent data.
    static func plan(seed: UInt64) -> (data: [UInt8], chunks: [(range: Range<Int>, urgent: Bool)]) {
        var generator = SeededGenerator(seed: seed)
        let data = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        return (data, sendPlan(total: size, seed: seed ^ 0xC0FFEE, largest: 20_000, urgentOneIn: 5))
    }

    @Test("several megabytes each way at once, random urgent sends: byte-exact, marks only where urgent sends ended")
    func bothDirections() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        let outgoing = Self.plan(seed: seed)
        let incoming = Self.plan(seed: seed ^ 0xFFFF)
        let pair = try activePair()
        pair.peer.setOOBInline()
        let stream = pair.stream
        let peer = pair.peer
        let urgentEndsOut = Set(outgoing.chunks.filter(\.urgent).map { $0.range.upperBound })
        let urgentEndsIn = Set(incoming.chunks.filter(\.urgent).map { $0.range.upperBound })

        // MacTCP stream → plain peer (which reads with SO_OOBINLINE and sockatmark).
        let sender = Background {
            for chunk in outgoing.chunks {
                try stream.send(Array(outgoing.data[chunk.range]), push: Bool.random(), urgent: chunk.urgent)
            }
            try stream.close()
        }
        let peerReader = Background { () throws -> ([UInt8], Set<Int>) in
            var received: [UInt8] = []
            var marks: Set<Int> = []
            while try peer.receive(into: &received, marks: &marks) {}
            return (received, marks)
        }
        // Plain peer → MacTCP stream (which reads with random buffer sizes).
        let peerSender = Background {
            for chunk in incoming.chunks {
                try peer.send(Array(incoming.data[chunk.range]), flags: chunk.urgent ? 1 : 0, timeout: 30)
            }
            peer.shutdownWrite()
        }
        var received: [UInt8] = []
        var marks: [Int] = []
        var urgentStarts = 0
        receiving: while true {
            do {
                let result = try stream.receive(timeout: 30, maxLength: Int.random(in: 1...70_000))
                received += result.data
                if result.mark { marks.append(received.count) }
                if result.urgent { urgentStarts += 1 }
            } catch MacTCPError.connectionClosing {
                break receiving
            }
        }
        _ = try peerSender.value(timeout: 60).get()
        _ = try sender.value(timeout: 60).get()
        let (peerReceived, peerMarks) = try peerReader.value(timeout: 60).get()

        #expect(received.count == incoming.data.count, "seed \(seed)")
        #expect(received == incoming.data, "seed \(seed)")
        #expect(peerReceived == outgoing.data, "seed \(seed)")
        #expect(Set(marks).isSubset(of: urgentEndsIn), "seed \(seed): a mark where no urgent send ended")
        #expect(peerMarks.isSubset(of: urgentEndsOut), "seed \(seed): a mark where no urgent send ended")
        #expect(!marks.isEmpty && !peerMarks.isEmpty, "seed \(seed)")
        #expect(urgentStarts >= marks.count, "seed \(seed): every region starts with an urgent result")
    }
}
