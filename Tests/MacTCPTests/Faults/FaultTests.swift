// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP
import Synchronization
import Testing

/// An endless, reproducible byte stream: a random block of prime length, repeated, so that a
/// lost, repeated or misplaced piece never lines up with the expected bytes.
struct Pattern: Sendable {
    let block: [UInt8]

    init(seed: UInt64, length: Int = 1_048_573) {
        var generator = SeededGenerator(seed: seed)
        var block = [UInt8](repeating: 0, count: length)
        block.withUnsafeMutableBytes { raw in
            var index = 0
            while index < length {
                var word = generator.next()
                for _ in 0..<8 where index < length {
                    raw[index] = UInt8(truncatingIfNeeded: word)
                    word >>= 8
                    index += 1
                }
            }
        }
        self.block = block
    }

    /// The stream's bytes `offset ..< offset + count`.
    func bytes(at offset: Int, count: Int) -> [UInt8] {
        var result: [UInt8] = []
        result.reserveCapacity(count)
        var position = offset % block.count
        var left = count
        while left > 0 {
            let piece = min(left, block.count - position)
            result += block[position..<(position + piece)]
            left -= piece
            position = 0
        }
        return result
    }

    /// Whether `bytes` are the stream's bytes from `offset` on.
    func matches(_ bytes: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        block.withUnsafeBytes { block in
            var position = offset % block.count
            var done = 0
            while done < bytes.count {
                let piece = min(bytes.count - done, block.count - position)
                if memcmp(bytes.baseAddress! + done, block.baseAddress! + position, piece) != 0 { return false }
                done += piece
                position = 0
            }
            return true
        }
    }
}

/// Random sends covering `total` bytes: sizes from 1 to `largest`, about one in `urgentOneIn`
/// sent as urgent data.
func sendPlan(total: Int, seed: UInt64, largest: Int = 65_536, urgentOneIn: Int = 40) -> [(range: Range<Int>, urgent: Bool)] {
    var generator = SeededGenerator(seed: seed)
    var chunks: [(Range<Int>, Bool)] = []
    var offset = 0
    while offset < total {
        let length = min(total - offset, Int.random(in: 1...largest, using: &generator))
        chunks.append((offset..<(offset + length), Int.random(in: 0..<urgentOneIn, using: &generator) == 0))
        offset += length
    }
    return chunks
}

/// The marks that fall where no urgent send ended, each with its distance from the nearest end.
func strayMarks(_ marks: [Int], _ ends: Set<Int>) -> String {
    Set(marks).subtracting(ends).sorted().map { mark in
        let nearest = ends.min { abs($0 - mark) < abs($1 - mark) } ?? 0
        return "a mark at \(mark), \(mark - nearest) bytes from the nearest urgent end"
    }.joined(separator: "; ")
}

/// What a receiver saw: how many bytes, whether all matched, where the marks fell.
struct Reception: Sendable {
    var count = 0
    var intact = true
    var marks: [Int] = []
    var urgentResults = 0
}

extension Peer {
    /// Reads to end of stream with SO_OOBINLINE, checking every byte against `pattern` and
    /// noting where `sockatmark` says an urgent send ended.
    func receiveChecking(_ pattern: Pattern, timeout: Double = 60) throws -> Reception {
        setOOBInline()
        var reception = Reception()
        var buffer = [UInt8](repeating: 0, count: 256 * 1024)
        while true {
            guard try poll(Int16(POLLIN), timeout: timeout) else {
                throw PeerError(description: "receive timed out after \(reception.count) bytes")
            }
            // At the mark, the next byte read is the last byte of an urgent send.
            if atMark { reception.marks.append(reception.count + 1) }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            guard count >= 0 else { throw PeerError(description: "recv: \(String(cString: strerror(errno)))") }
            if count == 0 { return reception }
            let matched = buffer.withUnsafeBytes { pattern.matches(UnsafeRawBufferPointer(rebasing: $0[0..<count]), at: reception.count) }
            if !matched { reception.intact = false }
            reception.count += count
        }
    }
}

/// Faults made by a user-space forwarder between this process and a namespace: loss,
/// reordering, a path that drops everything and then heals.
@Suite(
    "Faults on a lossy link", .serialized, .timeLimit(.minutes(3)),
    .enabled(if: LossyLink.isAvailable, "needs root, iproute2, python3 and /dev/net/tun"))
struct FaultTests {
    @Test("256 MiB each way through 1 % loss and 2 % reordering, random urgent sends: byte-exact, marks only where urgent sends ended")
    func lossAndReordering() throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        let total = 256 << 20
        let link = try LossyLink(loss: 0.01, reorder: 0.02, seed: seed)
        defer { link.tearDown() }
        let outgoing = Pattern(seed: seed)
        let incoming = Pattern(seed: seed ^ 0x5A5A)
        let outgoingPlan = sendPlan(total: total, seed: seed)
        let incomingPlan = sendPlan(total: total, seed: seed ^ 0x5A5A)
        let listener = try link.within { try Peer.listener(port: 7000, host: 0) }
        let stream = try TCPStream()
        try stream.activeOpen(host: LossyLink.farAddress, remotePort: 7000, timeout: 10)
        let peer = try listener.accept(timeout: 10)
        let start = Clock.now

        let sender = Background {
            for chunk in outgoingPlan {
                try stream.send(outgoing.bytes(at: chunk.range.lowerBound, count: chunk.range.count), urgent: chunk.urgent)
            }
            try stream.close()
        }
        let peerReader = Background { try peer.receiveChecking(outgoing) }
        let peerSender = Background {
            for chunk in incomingPlan {
                try peer.send(
                    incoming.bytes(at: chunk.range.lowerBound, count: chunk.range.count), flags: chunk.urgent ? Int32(MSG_OOB) : 0,
                    timeout: 60)
            }
            peer.shutdownWrite()
        }
        var received = Reception()
        while true {
            do {
                let result = try stream.receive(timeout: 60, maxLength: Int.random(in: 1...200_000))
                if !result.data.withUnsafeBytes({ incoming.matches($0, at: received.count) }) { received.intact = false }
                received.count += result.data.count
                if result.mark { received.marks.append(received.count) }
                if result.urgent { received.urgentResults += 1 }
            } catch MacTCPError.connectionClosing {
                break
            }
        }
        _ = try peerSender.value(timeout: 120).get()
        _ = try sender.value(timeout: 120).get()
        let sent = try peerReader.value(timeout: 120).get()
        let elapsed = Clock.now - start
        let counts = link.tearDown()
        print(
            "lossy link: \(2 * total >> 20) MiB in \(String(format: "%.1f", elapsed)) s, packets \(counts), urgent sends \(outgoingPlan.filter(\.urgent).count) + \(incomingPlan.filter(\.urgent).count), marks \(sent.marks.count) + \(received.marks.count)"
        )

        let urgentEndsOut = Set(outgoingPlan.filter(\.urgent).map(\.range.upperBound))
        let urgentEndsIn = Set(incomingPlan.filter(\.urgent).map(\.range.upperBound))
        #expect(received.count == total && received.intact, "seed \(seed)")
        #expect(sent.count == total && sent.intact, "seed \(seed)")
        #expect(Set(received.marks).isSubset(of: urgentEndsIn), "seed \(seed): \(strayMarks(received.marks, urgentEndsIn))")
        #expect(Set(sent.marks).isSubset(of: urgentEndsOut), "seed \(seed): \(strayMarks(sent.marks, urgentEndsOut))")
        #expect(!received.marks.isEmpty && !sent.marks.isEmpty, "seed \(seed)")
        #expect(received.urgentResults >= received.marks.count, "seed \(seed): every region starts with an urgent result")
        #expect((counts["dropped"] ?? 0) > 0 && (counts["reordered"] ?? 0) > 0, "the link did drop and reorder: \(counts)")
    }

    /// A stream in this process connected to a plain peer across the link, with `log` attached.
    private func connect(_ link: LossyLink, options: TCPOpenOptions, log: EventLog) throws -> (TCPStream, Peer) {
        let listener = try link.within { try Peer.listener(port: 7001, host: 0) }
        let stream = try TCPStream()
        log.attach(to: stream)
        try stream.activeOpen(host: LossyLink.farAddress, remotePort: 7001, timeout: 10, options: options)
        return (stream, try listener.accept(timeout: 10))
    }

    @Test("keepalive on an idle connection whose path vanishes: .terminate(networkFailure) after the probes, not never")
    func keepaliveFindsVanishedPeer() throws {
        let link = try LossyLink()
        defer { link.tearDown() }
        let log = EventLog()
        let keepalive = TCPKeepalive(idle: .seconds(1), interval: .seconds(1), count: 2)
        let (stream, peer) = try connect(link, options: TCPOpenOptions(ulpAction: .report, keepalive: keepalive), log: log)
        defer { peer.close() }
        try stream.send("hello")
        #expect(try peer.receive(exactly: 5) == Array("hello".utf8))
        usleep(300_000)
        link.cut()
        let cutAt = Clock.now
        try log.wait(for: .terminate, timeout: 15)
        let elapsed = Clock.now - cutAt
        print("keepalive: terminated \(String(format: "%.2f", elapsed)) s after the cut (idle 1 s, 2 probes 1 s apart)")
        #expect(elapsed >= 1.5, "terminated after \(elapsed) s, before the probes could have gone unanswered")
        #expect(log.details(.terminate) == [TCPTerminationReason.networkFailure.rawValue])
        expectMacTCPError(.connectionTerminated) { _ = try stream.receive(timeout: 1) }
    }

    @Test(
        "the path drops everything both ways, ULP action abort: .terminate(ulpTimeout) once, after the ULP timeout (not before, not the minutes retransmissions take)"
    )
    func vanishingPeerAbort() throws {
        let link = try LossyLink()
        defer { link.tearDown() }
        let log = EventLog()
        let ulp = 2.0
        let (stream, peer) = try connect(link, options: TCPOpenOptions(ulpTimeout: .seconds(2), ulpAction: .abort), log: log)
        let pattern = Pattern(seed: 7)
        let sending = Background { () throws -> Int in
            var offset = 0
            while true {
                try stream.send(pattern.bytes(at: offset, count: 65_536))
                offset += 65_536
            }
        }
        let reading = Background { try peer.receiveChecking(pattern, timeout: 30) }
        try waitUntil(timeout: 10, "data flowing") { try stream.status().sendUnacked > 1 << 20 }
        let rtoMilliseconds = max(200, try stream.status().srtt * 2)  // at least Linux's minimum
        link.cut()
        let cutAt = Clock.now
        try log.wait(for: .terminate, timeout: 20)
        let elapsed = Clock.now - cutAt
        print(
            "path cut: terminated after \(String(format: "%.3f", elapsed)) s (ULP timeout \(ulp) s, retransmission timeout ≤ \(rtoMilliseconds) ms)"
        )
        // What this measures is which timer ended the connection: the ULP timer (2 s), not
        // the retransmissions running out (minutes). The upper bound leaves a busy machine
        // room for the kernel's last retransmission timer and the event's delivery.
        #expect(elapsed >= ulp * 0.8)
        #expect(elapsed <= ulp * 2 + Double(rtoMilliseconds) / 1000, "terminated after \(elapsed) s")
        #expect(log.details(.terminate) == [TCPTerminationReason.ulpTimeout.rawValue])
        #expect(throws: MacTCPError.connectionTerminated) { try sending.value(timeout: 5).get() }
        expectMacTCPError(.connectionTerminated) { _ = try stream.receive(timeout: 1) }
        log.settle(0.3)
        #expect(log.count(.terminate) == 1)
        // The peer never learns (the path still drops): end its reading, and check that what
        // it got before the cut is intact.
        shutdown(peer.fd, Int32(SHUT_RDWR))
        #expect(try reading.value(timeout: 10).get().intact)
    }

    @Test(
        "the path drops everything for a while, ULP action report: .ulpTimeout repeats, nothing is aborted, and once it heals every byte arrives"
    )
    func vanishingPeerReport() throws {
        let link = try LossyLink()
        defer { link.tearDown() }
        let log = EventLog()
        let (stream, peer) = try connect(link, options: TCPOpenOptions(ulpTimeout: .milliseconds(500), ulpAction: .report), log: log)
        let pattern = Pattern(seed: 8)
        let total = 32 << 20
        let sending = Background {
            var offset = 0
            while offset < total {
                try stream.send(pattern.bytes(at: offset, count: 65_536))
                offset += 65_536
            }
            try stream.close()
        }
        let reading = Background { try peer.receiveChecking(pattern, timeout: 60) }
        try waitUntil(timeout: 10, "data flowing") { try stream.status().sendUnacked > 1 << 20 }
        link.cut()
        let cutAt = Clock.now
        try log.wait(for: .ulpTimeout, count: 3, timeout: 10)
        #expect(Clock.now - cutAt >= 1.0)
        // Sent and never acknowledged: SND.NXT is ahead of SND.UNA by the data in flight.
        let stalled = try stream.status()
        #expect(stalled.state == .established)
        #expect(stalled.amtUnackedData > 0)
        #expect(stalled.sendNext == stalled.sendUnacked + stalled.amtUnackedData)
        link.heal()
        let healedAt = Clock.now
        _ = try sending.value(timeout: 60).get()
        let received = try reading.value(timeout: 60).get()
        print(
            "path cut for \(String(format: "%.1f", healedAt - cutAt)) s: \(log.count(.ulpTimeout)) .ulpTimeout reports; \(received.count) bytes delivered \(received.intact ? "intact" : "DAMAGED") \(String(format: "%.1f", Clock.now - healedAt)) s after healing"
        )
        #expect(received.count == total && received.intact)
        #expect(log.count(.terminate) == 0 || log.details(.terminate) == [TCPTerminationReason.ulpClose.rawValue])
        let counts = link.tearDown()
        #expect((counts["cutDropped"] ?? 0) > 0, "\(counts)")
    }
}
