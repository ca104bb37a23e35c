import Dispatch
import Synchronization

/// Delivers one stream's events to its ASR, in order, one at a time.
///
/// Each stream has its own serial dispatch queue (targeting a shared concurrent one), so
/// the ASR never runs on the caller's thread or on the reactor thread, two events of the same
/// stream never overlap, and a slow ASR of one stream does not hold up another stream's
/// events. Events are queued, never coalesced into a single slot, so none is dropped.
/// An ASR may call any `TCPStream` method, blocking ones included.
final class EventDelivery: Sendable {
    typealias Handler = @Sendable (TCPEvent, Int) -> Void

    private static let target = DispatchQueue(label: "MacTCP.asr", attributes: .concurrent)

    private let queue = DispatchQueue(label: "MacTCP.stream.asr", target: EventDelivery.target)
    private let handler = Mutex<Handler?>(nil)

    /// The ASR; read when each event is delivered.
    var asr: Handler? {
        get { handler.withLock { $0 } }
        set { handler.withLock { $0 = newValue } }
    }

    /// Drops the ASR once the events queued so far have been delivered (after `release()`),
    /// so that an ASR capturing its stream does not keep it alive.
    func finish() {
        queue.async { [self] in handler.withLock { $0 = nil } }
    }

    /// Queues an event. Never blocks; callers post while holding the stream's lock so that
    /// the queue order is the order in which the events were decided.
    func post(_ event: TCPEvent, _ detail: Int = 0) {
        queue.async { [self] in
            if let asr = handler.withLock({ $0 }) { asr(event, detail) }
        }
    }
}
