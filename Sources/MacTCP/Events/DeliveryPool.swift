// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// The threads that run every stream's ASR.
///
/// Streams with events to deliver (their ``DeliveryMailbox``, a ``Mailbox``) wait in one FIFO;
/// a worker takes a mailbox and runs its events in order, so one stream's events never
/// overlap. How many workers there are is the point of this type:
///
/// - Up to one per processor start as soon as events wait and no worker is idle. A burst of
///   events (5,000 connections arriving in 0.1 s, each with its `.passiveOpenDone`) is run
///   by these few threads, one event after another.
/// - More start only when the work stops moving: a monitor thread looks every
///   ``stallInterval`` while events wait with no idle worker, and starts one more worker
///   (up to ``maximumWorkers``) whenever no worker took an event since its last look. ASRs may
///   block (any stream call may be made from an ASR, and an ASR may wait for another
///   stream's event), and this is what keeps the other streams' events coming then.
/// - A worker idle for ``idleLimit`` ends.
///
/// Dispatch's default queues, used before, start a thread for every queue that has work
/// while no thread is idle: the 5,000-connection burst left 255 threads behind, 2.5 MiB of
/// stacks, and with them the streams the ASRs created spread over many malloc arenas.
final class DeliveryPool: Sendable {
    /// Something with events to run: the delivery of one stream.
    ///
    /// Not required to be `Sendable`: a stream's mailbox is its own lock (a ``LockedBuffer``,
    /// which cannot be `Sendable`), and it is safe to hand between threads because everything
    /// it keeps is touched only under that lock. The pool keeps mailboxes only under its own
    /// lock and gives each to one worker at a time.
    protocol Mailbox: AnyObject {
        /// Runs some of the mailbox's events; called by one worker at a time.
        func drain()
    }

    static let shared = DeliveryPool()

    /// How long events may wait without any worker taking one before another worker starts,
    /// in milliseconds.
    static let stallInterval = 5
    /// How long a worker waits for work before it ends, in milliseconds.
    static let idleLimit: UInt64 = 2000
    /// The most workers at once; beyond this, events wait for a worker to come free.
    static let maximumWorkers = 256

    private struct State {
        /// Mailboxes waiting for a worker, from `head` on.
        var ready: [(any Mailbox)?] = []
        var head = 0
        var workers = 0
        /// Workers asleep waiting for work, and how many of them have been signalled and not
        /// yet woken: a worker is free for a new mailbox while `idle > wakeups`.
        var idle = 0
        var wakeups = 0
        /// Counts mailboxes taken: the monitor's measure of progress.
        var taken: UInt64 = 0
        /// Whether the monitor is looking (it sleeps on `monitorNeeded` otherwise).
        var monitoring = false
        var monitorStarted = false

        var isEmpty: Bool { head == ready.count }

        /// A sleeping worker wakes (with work, or to end).
        mutating func leaveIdle() {
            idle -= 1
            wakeups = max(0, min(wakeups - 1, idle))
        }

        mutating func take() -> (any Mailbox)? {
            guard head < ready.count else { return nil }
            let mailbox = ready[head]
            ready[head] = nil
            head += 1
            taken &+= 1
            if head == ready.count {
                ready.removeAll(keepingCapacity: ready.count <= 1024)
                head = 0
            }
            return mailbox
        }
    }

    private let state = Lock(State())
    /// Set when the monitor should start looking.
    private let monitorNeeded = Lock(false)
    private let minimumWorkers = max(2, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))

    private init() {}

    /// Queues `mailbox` for a worker. Never blocks on the mailbox's own lock or an ASR.
    func schedule(_ mailbox: any Mailbox) {
        let start = state.withLock { state -> Start in
            state.ready.append(mailbox)
            if state.idle > state.wakeups {
                state.wakeups += 1
                return .idleWorker
            }
            if state.workers < minimumWorkers {
                state.workers += 1
                return .worker
            }
            return Self.monitorIfIdle(&state)
        }
        perform(start)
    }

    private enum Start { case none, idleWorker, worker, monitor, monitorWake }

    /// Sets the monitor looking, if it is not already.
    private static func monitorIfIdle(_ state: inout State) -> Start {
        guard !state.monitoring else { return .none }
        state.monitoring = true
        if state.monitorStarted { return .monitorWake }
        state.monitorStarted = true
        return .monitor
    }

    private func perform(_ start: Start) {
        switch start {
        case .none:
            break
        case .idleWorker:
            state.signalOne()
        case .worker:
            if !LibraryThread.start(name: "MacTCP ASR", { [self] in work() }) {
                // No thread now: the monitor tries again while events wait.
                perform(
                    state.withLock { state in
                        state.workers -= 1
                        return Self.monitorIfIdle(&state)
                    })
            }
        case .monitor:
            if !LibraryThread.start(name: "MacTCP ASR mon", { [self] in monitor() }) {
                // The next event tries again.
                state.withLock {
                    $0.monitoring = false
                    $0.monitorStarted = false
                }
            }
        case .monitorWake:
            monitorNeeded.withLock { $0 = true }
            monitorNeeded.broadcast()
        }
    }

    private func work() {
        while let mailbox = next() {
            mailbox.drain()
        }
    }

    /// The next mailbox, or nil when the worker has been idle for ``idleLimit`` and ends.
    private func next() -> (any Mailbox)? {
        var counted = false
        let taken = state.wait(until: Deadline(milliseconds: Self.idleLimit)) { state -> (any Mailbox)? in
            if let mailbox = state.take() {
                if counted { state.leaveIdle() }
                return mailbox
            }
            if !counted {
                state.idle += 1
                counted = true
            }
            return nil
        }
        if let taken { return taken }
        return state.withLock { state in
            state.leaveIdle()
            if let mailbox = state.take() { return mailbox }
            state.workers -= 1
            return nil
        }
    }

    /// Starts a worker whenever events waited a whole ``stallInterval`` without any worker
    /// taking one; sleeps while nothing waits.
    private func monitor() {
        var lastTaken: UInt64?
        while true {
            let look = state.withLock { state -> (keepLooking: Bool, start: Start) in
                guard !state.isEmpty else {
                    state.monitoring = false
                    return (false, .none)
                }
                defer { lastTaken = state.taken }
                guard state.taken == lastTaken else { return (true, .none) }
                // (A sleeping worker here would be a missed wake-up; wake it rather than add one.)
                if state.idle > 0 { return (true, .idleWorker) }
                guard state.workers < Self.maximumWorkers else { return (true, .none) }
                state.workers += 1
                return (true, .worker)
            }
            perform(look.start)
            if look.keepLooking {
                // (The thread blocks signals, so the sleep is not cut short.)
                var pause = timespec(tv_sec: 0, tv_nsec: Self.stallInterval * 1_000_000)
                nanosleep(&pause, nil)
            } else {
                lastTaken = nil
                _ = monitorNeeded.wait(until: .never) { needed -> Bool? in
                    guard needed else { return nil }
                    needed = false
                    return true
                }
            }
        }
    }
}

extension DeliveryPool {
    /// One piece of work of its own: a mailbox that runs it once.
    private final class Job: Mailbox {
        private let work: @Sendable () -> Void
        init(_ work: @escaping @Sendable () -> Void) { self.work = work }
        func drain() { work() }
    }

    /// Runs `work` on one of the pool's threads (never the reactor's), beside the streams'
    /// events: for library work that may block or that runs a caller's code (the resolver's
    /// completion handlers, its questions over TCP).
    func run(_ work: @escaping @Sendable () -> Void) {
        schedule(Job(work))
    }
}
