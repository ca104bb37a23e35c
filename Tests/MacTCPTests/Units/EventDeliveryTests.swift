// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Synchronization
import Testing

@testable import MacTCP

/// A stream's event queue (`EventDelivery`) as a unit: what the ASR and the event sequence
/// are given, in which order, on how many threads at once.
@Suite("units: event delivery", .timeLimit(.minutes(1)))
struct EventDeliveryTests {
    /// What an ASR saw: the details in order, and the most calls that ran at once.
    final class Seen: Sendable {
        // The library's futex lock, not Mutex: ThreadSanitizer reports a Swift access race
        // inside Mutex for values read from one thread and changed on another under it.
        let details = Lock<[Int]>([])
        let overlap = Lock<(inside: Int, maximum: Int)>((0, 0))
        let gate = DispatchSemaphore(value: 0)

        func handler(blockingFirst: Bool) -> RawEventHandler {
            { [self] _, detail in
                overlap.withLock {
                    $0.inside += 1
                    $0.maximum = max($0.maximum, $0.inside)
                }
                if blockingFirst && detail == 0 { gate.wait() }
                details.withLock { $0.append(detail) }
                overlap.withLock { $0.inside -= 1 }
            }
        }
        var count: Int { details.withLock { $0.count } }
    }

    @Test("events queued behind a blocked ASR, far more than one turn of 64, all arrive in order")
    func longQueue() throws {
        try Reactor.start(for: "test")
        let delivery = EventDelivery<TCPEvent>()
        let seen = Seen()
        delivery.handler = seen.handler(blockingFirst: true)
        for detail in 0..<1000 { delivery.post(.dataArrival, detail) }
        seen.gate.signal()
        try waitUntil("1,000 events delivered (have \(seen.count))") { seen.count == 1000 }
        #expect(seen.details.withLock { $0 } == Array(0..<1000))
    }

    @Test("one stream's ASR never runs on two threads at once; each poster's events keep their order")
    func serialPerStream() throws {
        try Reactor.start(for: "test")
        let delivery = EventDelivery<TCPEvent>()
        let seen = Seen()
        delivery.handler = seen.handler(blockingFirst: false)
        let posters = (0..<4).map { poster in
            Background {
                for index in 0..<5000 {
                    delivery.post(.dataArrival, poster * 1_000_000 + index)
                    if index % 100 == 0 { usleep(50) }
                }
            }
        }
        for poster in posters { _ = try poster.value(timeout: 30).get() }
        try waitUntil(timeout: 20, "20,000 events delivered (have \(seen.count))") { seen.count == 20_000 }
        #expect(seen.overlap.withLock { $0.maximum } == 1)
        let details = seen.details.withLock { $0 }
        for poster in 0..<4 {
            let mine = details.filter { $0 / 1_000_000 == poster }.map { $0 % 1_000_000 }
            #expect(mine == Array(0..<5000), "poster \(poster)'s events out of order")
        }
    }

    @Test("finish() ends the event sequence and lets go of the ASR once the queue is drained")
    func finishDropsHandler() async throws {
        try Reactor.start(for: "test")
        final class Owner: Sendable {}
        let delivery = EventDelivery<TCPEvent>()
        weak var owner: Owner?
        do {
            let strong = Owner()
            owner = strong
            delivery.handler = { _, _ in _ = strong }
        }
        let sequence = delivery.sequence(finished: false)
        delivery.post(.dataArrival, 7)
        delivery.finish()
        var received: [Int] = []
        for await (_, detail) in sequence { received.append(detail) }
        #expect(received == [7])
        try waitUntil("the ASR released") { owner == nil && delivery.handler == nil }
    }

    @Test("a waiting .icmpReceived is replaced by the next one, for the ASR and the sequence; every other event is kept, in order")
    func icmpCoalesced() async throws {
        try Reactor.start(for: "test")
        let delivery = EventDelivery<TCPEvent>()
        let seen = Seen()
        delivery.handler = seen.handler(blockingFirst: true)
        let sequence = delivery.sequence(finished: false)
        delivery.post(.dataArrival, 0)  // the ASR blocks on it; the rest waits behind
        for detail in 1...10_000 { delivery.post(.icmpReceived, detail) }
        delivery.post(.urgent, 20_000)
        for detail in 30_001...30_100 { delivery.post(.icmpReceived, detail) }
        delivery.post(.closing, 40_000)
        delivery.finish()
        seen.gate.signal()
        // One waiting .icmpReceived at a time, the latest, where the latest came; the others
        // unchanged.
        let expected = [0, 20_000, 30_100, 40_000]
        try waitUntil("the ASR's events") { seen.count == expected.count }
        usleep(50_000)
        #expect(seen.details.withLock { $0 } == expected)
        var received: [Int] = []
        for await (_, detail) in sequence { received.append(detail) }
        #expect(received == expected)
    }
}
