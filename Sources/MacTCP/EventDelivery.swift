import Dispatch
import Synchronization

/// Delivers one stream's events to its ASR and to its event sequence, in order.
///
/// Each stream has its own serial dispatch queue (made when its first event is delivered to
/// an ASR: a stream that never delivers one costs no queue), so the ASR never runs on the caller's
/// thread or on the reactor thread, two events of the same stream never overlap, and a slow
/// ASR of one stream does not hold up another stream's events. The queues keep Dispatch's
/// default target, which may add a thread when every worker is busy: events still arrive
/// when the application blocks Dispatch's threads (an ASR that makes blocking calls does). Events are queued, never coalesced into a single slot, so none is dropped.
/// An ASR may call any `TCPStream` method, blocking ones included.
final class EventDelivery<Event: Sendable>: Sendable {
    typealias Handler = @Sendable (Event, Int) -> Void
    typealias Sequence = AsyncStream<(event: Event, detail: Int)>

    private struct Listeners {
        var handler: Handler?
        var sequence: Sequence?
        var continuation: Sequence.Continuation?
        var queue: DispatchQueue?

        /// The queue for an event to the ASR, nil without an ASR.
        mutating func queueForHandler() -> DispatchQueue? {
            guard handler != nil else { return nil }
            if let queue { return queue }
            let made = DispatchQueue(label: "MacTCP.stream.asr")
            queue = made
            return made
        }
    }

    private let listeners = Lock(Listeners())

    /// The ASR; read again when each event is delivered.
    var asr: Handler? {
        get { listeners.withLock { $0.handler } }
        set { listeners.withLock { $0.handler = newValue } }
    }

    /// Whether anyone listens: an ASR or the event sequence.
    var hasListeners: Bool {
        listeners.withLock { $0.handler != nil || $0.continuation != nil }
    }

    /// The stream's event sequence, made on first use (already finished after release).
    func sequence(finished: Bool) -> Sequence {
        listeners.withLock { listeners in
            if let sequence = listeners.sequence { return sequence }
            let (sequence, continuation) = Sequence.makeStream(bufferingPolicy: .unbounded)
            if finished { continuation.finish() }
            listeners.sequence = sequence
            listeners.continuation = continuation
            return sequence
        }
    }

    /// Queues an event. Never blocks; callers post while holding the stream's lock so that
    /// the order of events is the order in which they were decided.
    func post(_ event: Event, _ detail: Int = 0) {
        let queue = listeners.withLock { listeners -> DispatchQueue? in
            listeners.continuation?.yield((event, detail))
            return listeners.queueForHandler()
        }
        queue?.async { [self] in
            if let asr = listeners.withLock({ $0.handler }) { asr(event, detail) }
        }
    }

    /// Ends the event sequence and drops the ASR once the events queued so far have been
    /// delivered (after `release()`), so that an ASR capturing its stream does not keep it
    /// alive.
    func finish() {
        let queue = listeners.withLock { listeners -> DispatchQueue? in
            listeners.continuation?.finish()
            return listeners.queueForHandler()
        }
        queue?.async { [self] in listeners.withLock { $0.handler = nil } }
    }
}
