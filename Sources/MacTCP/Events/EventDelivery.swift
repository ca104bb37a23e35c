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
/// ASR of one stream does not hold up another stream's events. Events are queued, never
/// coalesced into a single slot, so none is dropped. An ASR may call any `TCPStream` method,
/// blocking ones included.
///
/// What it keeps lives in a ``DeliveryMailbox``, which is its own lock: one allocation per
/// stream (a server keeps thousands of streams waiting).
///
/// `@unchecked Sendable`: the mailbox's contents are touched only under its mutex, as a
/// ``Lock``'s value is (the mailbox cannot be `Sendable` itself, being a `ManagedBuffer`).
struct EventDelivery<Event: RawEvent>: @unchecked Sendable {
    typealias RawHandler = RawEventHandler
    typealias Sequence = AsyncStream<(event: Event, detail: Int)>

    /// A stream's event sequence and the continuation that feeds it.
    private final class SequenceEnds: Sendable {
        let sequence: Sequence
        let continuation: Sequence.Continuation
        init(sequence: Sequence, continuation: Sequence.Continuation) {
            self.sequence = sequence
            self.continuation = continuation
        }
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
        mailbox.withLock { $0.handler != nil || $0.sequenceEnds != nil }
    }

    private func ends(_ listeners: DeliveryListeners) -> SequenceEnds? {
        listeners.sequenceEnds.map { unsafeDowncast($0, to: SequenceEnds.self) }
    }

    /// The stream's event sequence, made on first use (already finished after release).
    func sequence(finished: Bool) -> Sequence {
        mailbox.withLock { listeners in
            if let ends = ends(listeners) { return ends.sequence }
            let (sequence, continuation) = Sequence.makeStream(bufferingPolicy: .unbounded)
            if finished { continuation.finish() }
            listeners.sequenceEnds = SequenceEnds(sequence: sequence, continuation: continuation)
            return sequence
        }
    }

    /// Queues an event. Never blocks; callers post while holding the stream's lock so that
    /// the order of events is the order in which they were decided.
    func post(_ event: Event, _ detail: Int = 0) {
        let schedule = mailbox.withLock { listeners -> Bool in
            ends(listeners)?.continuation.yield((event, detail))
            return listeners.handler != nil && listeners.queue(.event(event.rawValue, detail))
        }
        if schedule { DeliveryPool.shared.schedule(mailbox) }
    }

    /// Ends the event sequence and drops the ASR once the events queued so far have been
    /// delivered (after `release()`), so that an ASR capturing its stream does not keep it
    /// alive.
    func finish() {
        let schedule = mailbox.withLock { listeners -> Bool in
            ends(listeners)?.continuation.finish()
            return listeners.handler != nil && listeners.queue(.dropHandler)
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
            }
        }
        // More are queued: the stream goes to the back, behind the other streams' events.
        DeliveryPool.shared.schedule(self)
    }
}

/// What an ``EventDelivery`` keeps under its lock. Not generic, on purpose: the runtime copies
/// and destroys a generic struct through its fields' metadata, looked up each time (for the
/// event sequence's `AsyncStream` types, about 3,000 instructions per stream); events are
/// kept as their raw values and the sequence as an object.
struct DeliveryListeners {
    typealias RawHandler = RawEventHandler

    enum Pending {
        /// An event's raw value and its detail.
        case event(Int, Int)
        /// `finish()`: the ASR is dropped after the events before it.
        case dropHandler
    }

    var handler: RawHandler?
    /// The stream's `SequenceEnds`, once asked for.
    var sequenceEnds: AnyObject?
    /// Events for the ASR not yet run, from `head` on.
    var pending: [Pending] = []
    var head = 0
    /// Whether the mailbox is in the pool's queue or being drained.
    var scheduled = false

    /// Queues `item` for the ASR; true when the mailbox must be given to the pool.
    mutating func queue(_ item: Pending) -> Bool {
        pending.append(item)
        defer { scheduled = true }
        return !scheduled
    }

    mutating func next() -> Pending? {
        guard head < pending.count else {
            scheduled = false
            return nil
        }
        defer {
            head += 1
            if head == pending.count {
                // (Freed: an idle stream keeps no buffer.)
                pending.removeAll()
                head = 0
            }
        }
        return pending[head]
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
}

extension RawEvent {
    /// A kept raw routine as the stream's typed ASR.
    static func routine(calling raw: @escaping RawEventHandler) -> @Sendable (Self, Int) -> Void {
        { event, detail in raw(event.rawValue, detail) }
    }
}

extension TCPEvent: RawEvent {
    static func rawRoutine(calling routine: (@Sendable (TCPEvent, Int) -> Void)?) -> RawEventHandler? {
        guard let routine else { return nil }
        return { raw, detail in
            if let event = TCPEvent(rawValue: raw) { routine(event, detail) }
        }
    }
}

extension UDPEvent: RawEvent {
    static func rawRoutine(calling routine: (@Sendable (UDPEvent, Int) -> Void)?) -> RawEventHandler? {
        guard let routine else { return nil }
        return { raw, detail in
            if let event = UDPEvent(rawValue: raw) { routine(event, detail) }
        }
    }
}
