// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP
import Synchronization

/// Records the events a stream's ASR receives, with the thread each ran on.
final class EventLog: Sendable {
    struct Entry: Sendable, Equatable {
        let event: TCPEvent
        let detail: Int
    }

    private let entries = Mutex<[Entry]>([])
    private let threads = Mutex<Set<UInt>>([])
    private let overlap = Mutex<(inside: Int, maximum: Int)>((0, 0))

    /// Installs the log as `stream`'s ASR, running `extra` after recording each event.
    func attach(to stream: TCPStream, _ extra: (@Sendable (TCPEvent, Int) -> Void)? = nil) {
        stream.asr = { [self] event, detail in
            overlap.withLock {
                $0.inside += 1
                $0.maximum = max($0.maximum, $0.inside)
            }
            threads.withLock { _ = $0.insert(UInt(bitPattern: Int(pthread_self()))) }
            entries.withLock { $0.append(Entry(event: event, detail: detail)) }
            extra?(event, detail)
            overlap.withLock { $0.inside -= 1 }
        }
    }

    var all: [Entry] { entries.withLock { $0 } }
    var kinds: [TCPEvent] { all.map(\.event) }
    func count(_ event: TCPEvent) -> Int { all.filter { $0.event == event }.count }
    func details(_ event: TCPEvent) -> [Int] { all.filter { $0.event == event }.map(\.detail) }
    var threadIDs: Set<UInt> { threads.withLock { $0 } }
    /// The most ASR calls of this stream that ran at the same time (1 when serial).
    var maximumOverlap: Int { overlap.withLock { $0.maximum } }

    /// Waits until `event` has been recorded `count` times.
    func wait(for event: TCPEvent, count: Int = 1, timeout: Double = 5) throws {
        try waitUntil(timeout: timeout, "\(count) × \(event) (have \(kinds))") { self.count(event) >= count }
    }

    /// Lets queued deliveries finish, so that a later count is final.
    func settle(_ seconds: Double = 0.15) {
        usleep(UInt32(seconds * 1e6))
    }
}
