// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import Synchronization
import Testing

@testable import MacTCP

/// The library's inner parts that a real peer cannot reach directly, tested as units.
@Suite("units: timers, the port table, deadlines, the ACK wait")
struct SeamTests {
    final class Ran: Sendable {
        let order = Mutex<[Int]>([])
        func action(_ value: Int) -> @Sendable () -> Void { { self.order.withLock { $0.append(value) } } }
    }

    @Test("TimerQueue runs what is due in deadline order, skips what was cancelled, keeps the rest")
    func timerQueue() {
        let start = ContinuousClock.now
        var queue = TimerQueue()
        let ran = Ran()
        #expect(queue.nextDeadline == nil)
        var ids: [Int: UInt64] = [:]
        for value in [5, 1, 4, 2, 3, 9, 7] {
            ids[value] = queue.schedule(at: start + .milliseconds(value), ran.action(value))
        }
        #expect(queue.nextDeadline == start + .milliseconds(1))
        queue.cancel(ids[1]!)  // the earliest: the next deadline moves on
        #expect(queue.nextDeadline == start + .milliseconds(2))
        queue.cancel(ids[4]!)
        for action in queue.takeDue(start + .milliseconds(5)) { action() }
        #expect(ran.order.withLock { $0 } == [2, 3, 5])
        #expect(queue.nextDeadline == start + .milliseconds(7))
        #expect(queue.takeDue(start + .milliseconds(6)).isEmpty)
        for action in queue.takeDue(start + .seconds(1)) { action() }
        #expect(ran.order.withLock { $0 } == [2, 3, 5, 7, 9])
        #expect(queue.nextDeadline == nil)
    }

    @Test("TimerQueue keeps 1,000 random deadlines in order")
    func timerQueueOrder() {
        let start = ContinuousClock.now
        var queue = TimerQueue()
        let ran = Ran()
        var generator = SeededGenerator(seed: 3)
        var values: [Int] = []
        for _ in 0..<1000 {
            let value = Int(generator.next() % 100_000)
            values.append(value)
            _ = queue.schedule(at: start + .microseconds(value), ran.action(value))
        }
        for action in queue.takeDue(start + .seconds(1)) { action() }
        #expect(ran.order.withLock { $0 } == values.sorted())
    }

    @Test("PortTable keeps each port's object apart, ports 0 and 65535 included")
    func portTable() {
        final class Box {
            let port: UInt16
            init(_ port: UInt16) { self.port = port }
        }
        var table = PortTable<Box>()
        let ports: [UInt16] = [0, 1, 255, 256, 7000, 0x1A00, 0x1AFF, 65535]
        for port in ports { #expect(table[port] == nil) }
        for port in ports { table[port] = Box(port) }
        for port in ports { #expect(table[port]?.port == port) }
        #expect(table[2] == nil && table[0x1A01] == nil && table[65534] == nil)
        table[256] = nil
        #expect(table[256] == nil)
        #expect(table[255]?.port == 255)
        table[40000] = nil  // clearing a port of an empty page makes nothing
        #expect(table[40000] == nil)
    }

    @Test("Deadline: zero is no limit; poll timeouts round up to whole milliseconds")
    func deadline() {
        #expect(Deadline(timeout: .zero).end == nil)
        #expect(Deadline.never.pollMilliseconds == -1)
        #expect(!Deadline.never.hasPassed)
        #expect(Deadline.never.remaining == nil)
        let soon = Deadline(timeout: .microseconds(1500))
        #expect((1...2).contains(soon.pollMilliseconds))  // 1.5 ms left at most: rounded up
        let later = Deadline(timeout: .seconds(10))
        #expect((9_990...10_000).contains(later.pollMilliseconds))
        #expect(!later.hasPassed)
        let remaining = later.remaining ?? .zero
        #expect(remaining > .seconds(9) && remaining <= .seconds(10))
        let quarter = Deadline(milliseconds: 250)
        let left = quarter.remaining ?? .zero
        #expect(left > .milliseconds(200) && left <= .milliseconds(250), "\(left)")
        #expect((200...250).contains(quarter.pollMilliseconds))
        let past = Deadline(milliseconds: 0)
        #expect(past.hasPassed)
        #expect(past.pollMilliseconds == 0)
        #expect(past.remaining == .zero)
    }

    @Test("AckWait: progress resets the bound; standing still past the ULP timeout throws commandTimeout")
    func ackWait() throws {
        var wait = AckWait(limit: .milliseconds(50))
        try wait.check(10)
        try wait.check(10)  // no progress yet, within the limit
        let start = ContinuousClock.now
        while ContinuousClock.now - start < .milliseconds(40) {
            try wait.check(UInt64((ContinuousClock.now - start).components.attoseconds / 1_000_000_000_000_000) + 11)
        }
        // Progress kept it alive for 40 ms; now it stands still.
        var threw: MacTCPError?
        let still = ContinuousClock.now
        while threw == nil && ContinuousClock.now - still < .seconds(2) {
            do { try wait.check(0) } catch { threw = error }
        }
        #expect(threw == .commandTimeout)
        #expect(ContinuousClock.now - still >= .milliseconds(45))
    }

    final class Counting: ReactorHandler {
        let calls = Mutex(0)
        func handle(events: UInt32) { calls.withLock { $0 += 1 } }
    }

    @Test("Reactor: a reused slot gets a new registration, and the handler it replaced is never called again")
    func reactorSlots() throws {
        try Reactor.start(for: "test")
        let pipe = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        defer { pipe.deallocate() }
        #expect(Glibc.pipe(pipe) == 0)
        let reader = Descriptor(pipe[0])
        defer {
            reader.retire()
            Glibc.close(pipe[1])
        }
        let old = Counting()
        let new = Counting()
        guard case .success(let first) = Reactor.shared.register(reader, events: EpollEvents.input, handler: old) else {
            Issue.record("cannot register")
            return
        }
        Reactor.shared.deregister(first, reader)
        guard case .success(let second) = Reactor.shared.register(reader, events: EpollEvents.input, handler: new) else {
            Issue.record("cannot register again")
            return
        }
        defer { Reactor.shared.deregister(second, reader) }
        #expect(first != second)
        var byte: UInt8 = 1
        #expect(Glibc.write(pipe[1], &byte, 1) == 1)
        try waitUntil("the new handler called") { new.calls.withLock { $0 } > 0 }
        #expect(old.calls.withLock { $0 } == 0)
    }

    @Test("WaiterQueue: oldest first, filters skip, removal from the middle, the watched count, 1,000 waiters through the head")
    func waiterQueue() throws {
        let stream = try TCPStream()
        func waiter(_ id: UInt64, host: UInt32 = 0, listened: Bool = false) -> ListenerRegistry.Waiter {
            ListenerRegistry.Waiter(id: id, stream: stream, remoteAddress: host == 0 ? nil : .v4(host), remotePort: 0, listened: listened)
        }
        var queue = WaiterQueue(first: waiter(1))
        for id: UInt64 in 2...5 { queue.append(waiter(id, host: id == 3 ? 0x7F00_0002 : 0)) }
        #expect(queue.count == 5 && queue.watched == 1)  // the filter of 3 makes it watched
        let peer = Endpoint(host: IPv4.loopback, port: 4000)
        #expect(queue.removeFirst(where: { $0.accepts(peer) })?.id == 1)
        #expect(queue.removeFirst(where: { $0.accepts(peer) })?.id == 2)
        #expect(queue.removeFirst(where: { $0.accepts(peer) })?.id == 4)  // 3 wants 127.0.0.2
        #expect(queue.watched == 1)
        queue.setWatched(id: 5, true)
        #expect(queue.watched == 2)
        queue.setWatched(id: 5, true)
        #expect(queue.watched == 2)
        queue.setWatched(id: 3, false)  // a filter stays watched
        #expect(queue.watched == 2)
        queue.remove(id: 3)
        #expect(queue.count == 1 && queue.watched == 1)
        queue.remove(id: 42)
        #expect(queue.removeFirst(where: { _ in true })?.id == 5)
        #expect(queue.isEmpty && queue.watched == 0)
        #expect(queue.removeFirst(where: { _ in true }) == nil)
        // Many through the head, some taken from the middle: the order of the rest holds.
        for id: UInt64 in 100..<1100 { queue.append(waiter(id, listened: id.isMultiple(of: 2))) }
        #expect(queue.watched == 500)
        var taken: [UInt64] = []
        for round in 0..<700 {
            if round % 7 == 3 {
                queue.remove(id: UInt64(1099 - round / 7))  // from the tail
            } else if let next = queue.removeFirst(where: { _ in true }) {
                taken.append(next.id)
            }
        }
        #expect(taken == Array(100..<700))
        var rest: [UInt64] = []
        while let next = queue.removeFirst(where: { _ in true }) { rest.append(next.id) }
        #expect(rest == Array(700..<1000))  // 1000…1099 were removed
        #expect(queue.isEmpty && queue.watched == 0)
    }

    @Test("Descriptor: closed by the last of its users after retire(), never under one still using it, never twice")
    func descriptorLifetime() throws {
        let ends = UnsafeMutablePointer<Int32>.allocate(capacity: 2)
        defer { ends.deallocate() }
        #expect(Glibc.pipe(ends) == 0)
        defer { Glibc.close(ends[1]) }
        let fd = ends[0]
        let descriptor = Descriptor(fd)
        let outcome = descriptor.withDescriptor { outer -> Bool in
            descriptor.withDescriptor { _ in descriptor.retire() }
            // Retired while two users held it; one is left: still open.
            return fcntl(outer, F_GETFD) >= 0
        }
        #expect(outcome == true)
        #expect(fcntl(fd, F_GETFD) < 0 && errno == EBADF)  // the last user closed it
        #expect(descriptor.isRetired)
        #expect(descriptor.withDescriptor { _ in true } == nil)  // no new user after retire()
        // A retire() without users closes at once, and a second one does nothing.
        let other = try #require(Optional(dup(ends[1])))
        let unused = Descriptor(other)
        unused.retire()
        #expect(fcntl(other, F_GETFD) < 0)
        let reused = dup(ends[1])  // most likely the same number again
        unused.retire()
        #expect(fcntl(reused, F_GETFD) >= 0, "a second retire() closed a descriptor it no longer owned")
        Glibc.close(reused)
    }
}
