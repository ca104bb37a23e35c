// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// Event delivery: each stream's queue of events for its ASR and its event sequence, the pool of
// threads that run ASRs (`DeliveryPool`), and the library's own threads (`LibraryThread`). It
// calls only the locks of `Internals/`; the streams post to it.

/// An ASR as the event queue keeps it: the event's raw value and its detail.
typealias RawEventHandler = @Sendable (Int, Int) -> Void

/// Delivers one stream's events to its ASR and to its event sequence, in order.
///
/// Events for the ASR wait in the stream's own FIFO; the ``DeliveryPool``'s threads run them
/// (at most one thread per stream at a time), so the ASR never runs on the caller's thread or
/// on the reactor thread, two events of the same stream never overlap, and a slow or blocked
/// ASR of one stream does not hold up another stream's events. Events are queued, none is
/// dropped, and one kind only is coalesced: an `.icmpReceived` still waiting for delivery is
/// replaced by the next one (its detail the latest report's), because a remote host can send
/// ICMP messages without limit, and every other event is bounded by the connection's own
/// course. So a flood of ICMP errors cannot grow a stream's queue past one such event, for the
/// ASR and for the event sequence alike. An ASR may call any `TCPStream` method, blocking ones
/// included.
///
/// What it keeps lives in a ``DeliveryMailbox``, which is its own lock: one allocation per
/// stream (a server keeps thousands of streams waiting).
///
/// `@unchecked Sendable`: the mailbox's contents are touched only under its mutex, as a
/// ``Lock``'s value is (the mailbox cannot be `Sendable` itself, being a `ManagedBuffer`).
struct EventDelivery<Event: RawEvent>: @unchecked Sendable {
    typealias RawHandler = RawEventHandler
    typealias Sequence = AsyncStream<(event: Event, detail: Int)>

    /// The mailbox, for the sequence's closures. `@unchecked Sendable`: everything it holds
    /// is touched only under its mutex (a `ManagedBuffer` cannot be `Sendable` itself).
    private struct SendableMailbox: @unchecked Sendable {
        let mailbox: DeliveryMailbox
    }

    /// A stream's event sequence, kept so that every use gets the same one.
    private final class SequenceBox: Sendable {
        let sequence: Sequence
        init(_ sequence: Sequence) { self.sequence = sequence }
    }

    private let mailbox = DeliveryMailbox.make(DeliveryListeners())

    /// The ASR, taking the events' raw values; read again when each event is delivered.
    ///
    /// Raw, so that the streams convert their typed routine once, in code that knows the
    /// event type: a routine passed as the generic `(Event, Int) -> Void` is wrapped in
    /// reabstraction thunks, each a heap allocation kept for as long as the routine is set
    /// (five per stream; a server keeps thousands of streams waiting).
    var handler: RawHandler? {
        get { mailbox.withLock { $0.handler } }
        nonmutating set { mailbox.withLock { $0.handler = newValue } }
    }

    /// Whether anyone listens: an ASR or the event sequence. (A stream keeps a copy under its
    /// own lock, taken when either is set: it asks on every change of its connection.)
    var hasListeners: Bool {
        mailbox.withLock { $0.handler != nil || $0.sequenceBox != nil }
    }

    /// The stream's event sequence, made on first use (already finished after release). Its
    /// events wait in the stream's mailbox (``DeliveryListeners/sequenceQueue``) until the
    /// consumer asks for them; cancelling the consuming task ends it.
    func sequence(finished: Bool) -> Sequence {
        mailbox.withLock { listeners in
            if let box = listeners.sequenceBox { return unsafeDowncast(box, to: SequenceBox.self).sequence }
            // Ended already (released, or its consumer cancelled): a sequence that ends at once,
            // kept nowhere.
            if finished || listeners.sequenceFinished { return Sequence { nil } }
            let mailbox = SendableMailbox(mailbox: self.mailbox)
            let sequence = Sequence(
                unfolding: {
                    while let (raw, detail) = await mailbox.mailbox.nextForSequence() {
                        if let event = Event(rawValue: raw) { return (event, detail) }
                    }
                    return nil
                },
                onCancel: { mailbox.mailbox.endSequence(dropping: true) })
            listeners.sequenceBox = SequenceBox(sequence)
            return sequence
        }
    }

    /// Queues an event. Never blocks; callers post while holding the stream's lock so that
    /// the order of events is the order in which they were decided.
    func post(_ event: Event, _ detail: Int = 0) {
        let item = DeliveryListeners.Pending.event(event.rawValue, detail)
        let coalesced = event.isCoalesced
        let (schedule, consumer) = mailbox.withLock { listeners -> (Bool, DeliveryListeners.Consumer?) in
            var consumer: DeliveryListeners.Consumer?
            if listeners.sequenceBox != nil && !listeners.sequenceFinished {
                if let waiting = listeners.sequenceConsumer {
                    listeners.sequenceConsumer = nil
                    consumer = waiting
                } else {
                    _ = listeners.sequenceQueue.append(item, coalescing: coalesced)
                }
            }
            return (listeners.handler != nil && listeners.queue(item, coalescing: coalesced), consumer)
        }
        consumer?.resume(returning: (event.rawValue, detail))
        if schedule { DeliveryPool.shared.schedule(mailbox) }
    }

    /// Ends the event sequence (after the events it holds) and drops the ASR once the events
    /// queued so far have been delivered (after `release()`), so that an ASR capturing its
    /// stream does not keep it alive.
    func finish() {
        mailbox.endSequence(dropping: false)
        let schedule = mailbox.withLock { listeners -> Bool in
            listeners.handler != nil && listeners.queue(.dropHandler, coalescing: false)
        }
        if schedule { DeliveryPool.shared.schedule(mailbox) }
    }
}

/// One stream's event queue and its routines, with the mutex that guards them, in one
/// allocation; what the delivery pool's threads drain.
final class DeliveryMailbox: LockedBuffer<DeliveryListeners>, DeliveryPool.Mailbox {
    /// Events one turn of a pool thread runs before the stream goes to the back of the queue.
    private static var turn: Int { 64 }

    /// Runs queued events in order (for a pool thread), each with the ASR as it is then.
    func drain() {
        for _ in 0..<Self.turn {
            let next = withLock { listeners -> (DeliveryListeners.Pending, DeliveryListeners.RawHandler?)? in
                listeners.next().map { ($0, listeners.handler) }
            }
            switch next {
            case nil:
                return
            case (.event(let raw, let detail), let handler)?:
                handler?(raw, detail)
            case (.dropHandler, _)?:
                withLock { $0.handler = nil }
            case (.replaced, _)?:
                break
            }
        }
        // More are queued: the stream goes to the back, behind the other streams' events.
        DeliveryPool.shared.schedule(self)
    }

    /// The event sequence's next event, waiting for it; nil once the sequence has ended.
    func nextForSequence() async -> (Int, Int)? {
        await withCheckedContinuation { (continuation: CheckedContinuation<(Int, Int)?, Never>) in
            let ready = withLock { listeners -> (Int, Int)?? in
                if case .event(let raw, let detail)? = listeners.sequenceQueue.next() { return .some((raw, detail)) }
                if listeners.sequenceFinished { return .some(nil) }
                listeners.sequenceConsumer = DeliveryListeners.Consumer(continuation)
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Ends the event sequence: after the events it still holds, or at once (`dropping`: its
    /// consumer was cancelled).
    func endSequence(dropping: Bool) {
        let consumer = withLock { listeners -> DeliveryListeners.Consumer? in
            listeners.sequenceFinished = true
            // The sequence's closures hold the mailbox: the mailbox lets go of the sequence, so
            // that the two do not keep each other alive. (Its consumer keeps what it needs.)
            listeners.sequenceBox = nil
            if dropping { listeners.sequenceQueue = EventQueue() }
            defer { listeners.sequenceConsumer = nil }
            return listeners.sequenceConsumer
        }
        consumer?.resume(returning: nil)
    }
}

/// What an ``EventDelivery`` keeps under its lock. Not generic, on purpose: the runtime copies
/// and destroys a generic struct through its fields' metadata, looked up each time (for the
/// event sequence's `AsyncStream` types, about 3,000 instructions per stream); events are
/// kept as their raw values and the sequence as an object.
struct DeliveryListeners {
    typealias RawHandler = RawEventHandler
    /// The event sequence's consumer, waiting for its next event. A class: a continuation
    /// kept in the struct would make every stream's mailbox pay for the concurrency
    /// library's resilient layout (copied and destroyed through its metadata).
    final class Consumer {
        private let continuation: CheckedContinuation<(Int, Int)?, Never>
        init(_ continuation: CheckedContinuation<(Int, Int)?, Never>) { self.continuation = continuation }
        func resume(returning value: (Int, Int)?) { continuation.resume(returning: value) }
    }

    enum Pending {
        /// An event's raw value and its detail.
        case event(Int, Int)
        /// `finish()`: the ASR is dropped after the events before it.
        case dropHandler
        /// A coalesced event that a later one replaced (see ``EventQueue``).
        case replaced
    }

    var handler: RawHandler?
    /// Events for the ASR not yet run.
    var pending = EventQueue()
    /// Whether the mailbox is in the pool's queue or being drained.
    var scheduled = false
    /// The stream's event sequence (a `SequenceBox`), once asked for.
    var sequenceBox: AnyObject?
    /// Events for the sequence its consumer has not asked for yet.
    var sequenceQueue = EventQueue()
    var sequenceConsumer: Consumer?
    /// The stream was released (or the consumer cancelled): no more events for the sequence.
    var sequenceFinished = false

    /// Queues `item` for the ASR; true when the mailbox must be given to the pool.
    mutating func queue(_ item: Pending, coalescing: Bool) -> Bool {
        guard pending.append(item, coalescing: coalescing) else { return false }
        defer { scheduled = true }
        return !scheduled
    }

    mutating func next() -> Pending? {
        guard let item = pending.next() else {
            scheduled = false
            return nil
        }
        return item
    }
}

/// A FIFO of events in which one kind is coalesced: an item queued with `coalescing` replaces
/// the coalescing item still waiting, if there is one. It takes that item's place when
/// nothing was queued after it; otherwise the old one is marked replaced and the new one
/// joins the end, so that events keep the order in which they happened. Either way at most
/// one coalescing item waits, and the marks are no more than the other events queued.
struct EventQueue {
    private var items: [DeliveryListeners.Pending] = []
    private var head = 0
    /// Where the coalescing item waits, if one does.
    private var coalescingIndex: Int?

    /// Queues `item`; false when it replaced the waiting coalescing item.
    mutating func append(_ item: DeliveryListeners.Pending, coalescing: Bool) -> Bool {
        if coalescing, let index = coalescingIndex {
            if index == items.count - 1 {
                items[index] = item
                return false
            }
            items[index] = .replaced
        }
        if coalescing { coalescingIndex = items.count }
        items.append(item)
        return true
    }

    mutating func next() -> DeliveryListeners.Pending? {
        while head < items.count {
            let item = items[head]
            if head == coalescingIndex { coalescingIndex = nil }
            head += 1
            if head == items.count {
                // (Freed: an idle stream keeps no buffer.)
                items.removeAll()
                head = 0
            }
            if case .replaced = item { continue }
            return item
        }
        return nil
    }
}

/// An event type whose routines the event queue keeps raw (``RawEventHandler``).
///
/// Each type converts its routine itself, in code that knows the type: a closure made in a
/// generic function captures the routine in its generic form, and the conversion to that form
/// is a reabstraction thunk, one more allocation for as long as the routine is set.
protocol RawEvent: RawRepresentable, Sendable where RawValue == Int {
    /// `routine` as the event queue keeps it; nil for nil.
    static func rawRoutine(calling routine: (@Sendable (Self, Int) -> Void)?) -> RawEventHandler?
    /// Whether a waiting event of this kind is replaced by the next one (see ``EventDelivery``).
    var isCoalesced: Bool { get }
}

extension RawEvent {
    /// A kept raw routine as the stream's typed ASR.
    static func routine(calling raw: @escaping RawEventHandler) -> @Sendable (Self, Int) -> Void {
        { event, detail in raw(event.rawValue, detail) }
    }
}

extension TCPEvent: RawEvent {
    var isCoalesced: Bool { self == .icmpReceived }

    static func rawRoutine(calling routine: (@Sendable (TCPEvent, Int) -> Void)?) -> RawEventHandler? {
        guard let routine else { return nil }
        return { raw, detail in
            if let event = TCPEvent(rawValue: raw) { routine(event, detail) }
        }
    }
}

extension UDPEvent: RawEvent {
    var isCoalesced: Bool { self == .icmpReceived }

    static func rawRoutine(calling routine: (@Sendable (UDPEvent, Int) -> Void)?) -> RawEventHandler? {
        guard let routine else { return nil }
        return { raw, detail in
            if let event = UDPEvent(rawValue: raw) { routine(event, detail) }
        }
    }
}
