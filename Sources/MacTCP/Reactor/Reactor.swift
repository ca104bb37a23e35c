// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The reactor: the one thread in `epoll_wait` that produces events, accepts for waiting
// passive opens that need it, wakes async calls and runs timers (`TimerQueue`), and the
// sleepers blocking calls wait in (`Sleepers`). It calls the system layer only.

import Synchronization

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// The one thread that watches every socket of the library.
///
/// It blocks in `epoll_wait` (edge-triggered registrations), hands each event to the
/// registration's handler and runs due timers. Blocking MacTCP calls do not go through it:
/// they make their system calls on the caller's thread; the reactor only produces events,
/// accepts connections for waiting passive opens, signals close completion and runs timers.
///
/// Each registration's 64-bit epoll tag is (generation << 32 | slot). A slot's generation
/// changes when it is freed, so an event still queued for a descriptor number that has since
/// been closed and reused never reaches the new owner's handler.
final class Reactor: Sendable {
    /// The process-wide reactor. Every stream starts it (``start(for:)``) when it is created,
    /// so that every later use finds it running.
    static var shared: Reactor {
        guard let pointer = UnsafeRawPointer(bitPattern: instance.load(ordering: .acquiring)) else {
            preconditionFailure("MacTCP: the reactor is used before a stream started it")
        }
        return Unmanaged<Reactor>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// The running reactor's address (retained for the life of the process), 0 until one
    /// started.
    private static let instance = Atomic<UInt>(0)
    /// Serialises the starts.
    private static let starting = Mutex(())

    /// Starts the reactor unless it runs already. When the system refuses its epoll
    /// instance, its eventfd or its thread (no descriptors left, no threads), the call that
    /// needed it throws ``MacTCPError/insufficientResources`` and a later one tries again.
    static func start(for operation: String) throws(MacTCPError) {
        if instance.load(ordering: .acquiring) != 0 { return }
        try starting.withLock { _ throws(MacTCPError) in
            if instance.load(ordering: .acquiring) != 0 { return }
            let reactor = try Reactor(operation: operation)
            instance.store(UInt(bitPattern: Unmanaged.passRetained(reactor).toOpaque()), ordering: .releasing)
        }
    }

    /// A registration of a descriptor with the reactor.
    struct Registration: Sendable, Equatable {
        fileprivate let slot: UInt32
        fileprivate let generation: UInt32
        fileprivate var tag: UInt64 { UInt64(generation) << 32 | UInt64(slot) }
    }

    /// A timer returned by ``schedule(after:_:)``.
    struct Timer: Sendable, Equatable {
        fileprivate let id: UInt64
    }

    private struct Slot {
        var generation: UInt32 = 0
        weak var handler: (any ReactorHandler)?
    }

    private struct Table {
        var slots: [Slot] = []
        var free: [UInt32] = []
    }

    private static let wakeTag = UInt64.max

    private let epollFD: Int32
    private let wakeFD: Int32
    private let table = Lock(Table())
    private let timers = Lock(TimerQueue())

    private init(operation: String) throws(MacTCPError) {
        let epoll = Sys.epollCreate()
        guard epoll >= 0 else {
            throw MacTCPError.insufficientResources.with(
                operation: operation, errno: -epoll, detail: "cannot create the reactor's epoll instance")
        }
        let wake = Sys.eventFD()
        guard wake >= 0 else {
            Sys.close(epoll)
            throw MacTCPError.insufficientResources.with(
                operation: operation, errno: -wake, detail: "cannot create the reactor's eventfd")
        }
        epollFD = epoll
        wakeFD = wake
        _ = Sys.epollControl(epollFD, .add, wakeFD, events: EpollEvents.input | EpollEvents.edgeTriggered, tag: Self.wakeTag)
        guard LibraryThread.start(name: "MacTCP reactor", { [self] in run() }) else {
            Sys.close(wake)
            Sys.close(epoll)
            throw MacTCPError.insufficientResources.with(operation: operation, detail: "cannot start the reactor thread")
        }
    }

    /// Starts watching `descriptor`; returns nil with the errno when epoll refuses.
    func register(_ descriptor: Descriptor, events: UInt32, handler: any ReactorHandler) -> Result<Registration, MacTCPError> {
        let registration = table.withLock { table -> Registration in
            let slot: UInt32
            if let reused = table.free.popLast() {
                slot = reused
            } else {
                slot = UInt32(table.slots.count)
                table.slots.append(Slot())
            }
            table.slots[Int(slot)].handler = handler
            return Registration(slot: slot, generation: table.slots[Int(slot)].generation)
        }
        let result =
            descriptor.withDescriptor { fd in
                Sys.epollControl(epollFD, .add, fd, events: events, tag: registration.tag)
            } ?? -EBADF
        if result < 0 {
            release(registration)
            let error = -result
            let code: MacTCPError = SyscallErrors.isResourceShortage(error) ? .insufficientResources : .invalidStreamPtr
            return .failure(code.with(operation: "register", errno: error))
        }
        return .success(registration)
    }

    /// Changes the events watched for a registered descriptor.
    func modify(_ registration: Registration, _ descriptor: Descriptor, events: UInt32) {
        _ = descriptor.withDescriptor { fd in Sys.epollControl(epollFD, .modify, fd, events: events, tag: registration.tag) }
    }

    /// Stops watching `descriptor`. Call before retiring the descriptor.
    func deregister(_ registration: Registration, _ descriptor: Descriptor) {
        _ = descriptor.withDescriptor { fd in Sys.epollControl(epollFD, .delete, fd) }
        release(registration)
    }

    private func release(_ registration: Registration) {
        table.withLock { table in
            let index = Int(registration.slot)
            guard table.slots[index].generation == registration.generation else { return }
            table.slots[index].generation &+= 1
            table.slots[index].handler = nil
            table.free.append(registration.slot)
        }
    }

    /// Runs `action` on the reactor thread after `delay` (it must not block).
    @discardableResult
    func schedule(after delay: Duration, _ action: @escaping @Sendable () -> Void) -> Timer {
        let deadline = ContinuousClock.now.advanced(by: delay)
        let (id, earliest) = timers.withLock { timers in
            let id = timers.schedule(at: deadline, action)
            return (id, timers.nextDeadline == deadline)
        }
        if earliest { Sys.signalEvent(wakeFD) }
        return Timer(id: id)
    }

    /// Disarms a timer; harmless if it has already run.
    func cancel(_ timer: Timer) {
        timers.withLock { $0.cancel(timer.id) }
    }

    private func run() {
        let capacity = 64
        var events = [UInt32](repeating: 0, count: capacity)
        var tags = [UInt64](repeating: 0, count: capacity)
        while true {
            let timeout = timers.withLock { timers -> Int32 in
                guard let next = timers.nextDeadline else { return -1 }
                let left = next - ContinuousClock.now
                if left <= .zero { return 0 }
                let (seconds, attoseconds) = left.components
                return Int32(clamping: seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            }
            let count = Sys.epollWait(epollFD, events: &events, tags: &tags, capacity: Int32(capacity), milliseconds: timeout)
            if count > 0 {
                for index in 0..<Int(count) {
                    dispatch(tag: tags[index], events: events[index])
                }
            }
            let due = timers.withLock { $0.takeDue(ContinuousClock.now) }
            for action in due { action() }
        }
    }

    private func dispatch(tag: UInt64, events: UInt32) {
        if tag == Self.wakeTag {
            Sys.resetEvent(wakeFD)
            return
        }
        let slot = Int(tag & 0xFFFF_FFFF)
        let generation = UInt32(tag >> 32)
        let handler = table.withLock { table -> (any ReactorHandler)? in
            guard slot < table.slots.count, table.slots[slot].generation == generation else { return nil }
            return table.slots[slot].handler
        }
        handler?.handle(events: events)
    }
}
