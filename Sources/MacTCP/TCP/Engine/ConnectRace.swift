// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// The sockets of an active open in progress, the stream's `.connecting` phase: one per
/// address being tried (Happy Eyeballs tries several at once; an open to one address has one).
final class ConnectAttempts: Sendable {
    private let sockets = Lock<[Descriptor]>([])

    func add(_ descriptor: Descriptor) {
        sockets.withLock { $0.append(descriptor) }
    }

    func remove(_ descriptor: Descriptor) {
        sockets.withLock { $0.removeAll { $0 === descriptor } }
    }

    /// The first socket still being tried (for `status()`).
    var first: Descriptor? { sockets.withLock { $0.first } }

    /// Interrupts every attempt (`abort`, `release`): each socket is disconnected, which
    /// wakes whoever waits on it; the open then sees the stream is no longer its own and
    /// closes them.
    func interrupt() {
        for descriptor in sockets.withLock({ $0 }) {
            _ = descriptor.withDescriptor { Sys.disconnect($0) }
        }
    }
}

/// An active open to one or more addresses: RFC 8305's connection attempts.
///
/// The addresses are tried in their order (the resolver's: RFC 6724 sorted, families
/// interleaved). The first attempt starts at once; the next one starts 250 ms later while an
/// earlier one is still pending, or at once when every pending one has failed; with a fixed
/// local port they run one at a time (two sockets cannot share it). The first to connect
/// wins; the others are closed (their peers may see a connection open and close) and leave
/// nothing on the stream: no event, no status, no error. When every address has failed, or
/// the deadline passes, the open fails with every address and why.
///
/// The race itself is a value the open's caller drives: ``TCPStream/advance(_:ready:)``
/// starts what is due and collects what has finished; the blocking open polls the pending
/// sockets in between, the async open waits for the reactor's word on them.
struct ConnectRace {
    struct Attempt {
        let descriptor: Descriptor
        /// The reactor registration, for async opens (they wait for the connect's wakeup).
        let registration: Reactor.Registration?
        let remote: Endpoint
        /// ICMP messages the kernel queued for this attempt.
        var icmp: [ICMPMessageType] = []
    }

    /// RFC 8305 §5's connection attempt delay.
    static let attemptDelayMilliseconds: UInt64 = 250
    static let operation = "activeOpen"

    let remotes: [Endpoint]
    let localPort: UInt16
    let options: TCPOpenOptions
    let deadline: Deadline
    let watched: Bool
    let sockets: ConnectAttempts
    /// What the name was, for messages (nil: a single address was given).
    let name: String?
    var pending: [Attempt] = []
    /// The index in `remotes` of the next address to try.
    var next = 0
    /// When the next address may be tried while another attempt is pending.
    var nextStart = Deadline.never
    /// Every address that failed, and how.
    var failures: [(remote: Endpoint, errno: Int32)] = []
    /// The ICMP messages of the attempts that failed: reported only if the whole open fails.
    var failedICMP: [ICMPMessageType] = []

    /// Whether another address may be started now.
    var mayStartNext: Bool {
        next < remotes.count && (pending.isEmpty || (localPort == 0 && nextStart.hasPassed))
    }

    /// When the caller must look again even if no socket has anything to say: the deadline,
    /// or the next address's start.
    var wakeDeadline: Deadline {
        guard next < remotes.count, localPort == 0, !pending.isEmpty else { return deadline }
        return Deadline.earlier(deadline, nextStart)
    }

    /// The error for an open in which nothing connected: the last errno, and each address
    /// with its reason.
    func failure() -> MacTCPError {
        let errno = failures.last?.errno ?? ETIMEDOUT
        let target = name.map { "\($0) port \(remotes.first?.port ?? 0)" } ?? remotes.first.map(\.description) ?? "?"
        let reasons = failures.map { "\($0.remote): \(String(cString: strerror($0.errno)))" }
        let detail =
            failures.count > 1 || name != nil
            ? "cannot connect to \(target) (\(failures.count) address\(failures.count == 1 ? "" : "es") tried: \(reasons.joined(separator: "; ")))"
            : "cannot connect to \(target)"
        return MacTCPError.openFailed.with(operation: Self.operation, errno: errno, detail: detail)
    }
}
