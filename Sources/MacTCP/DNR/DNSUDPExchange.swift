// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// One question over UDP, waited for on the reactor: a socket of its own connected to the
/// server (so a random source port; the kernel then takes datagrams from the server's address
/// and port only, and reports an ICMP port unreachable as `ECONNREFUSED`), the query sent
/// once, and the first datagram that answers it taken. It ends once: with the answer, a
/// failure, or the timeout, and its socket is closed then.
final class DNSUDPExchange: ReactorHandler, Sendable {
    typealias Done = @Sendable (DNSExchange.Answer) -> Void

    private struct State {
        var done: Done?
        var registration: Reactor.Registration?
        var timer: Reactor.Timer?
    }

    private let state: Lock<State>
    private let descriptor: Descriptor
    private let query: DNSMessage
    private let server: Endpoint
    private let exactCase: Bool

    private init(descriptor: Descriptor, query: DNSMessage, server: Endpoint, exactCase: Bool, done: @escaping Done) {
        state = Lock(State(done: done))
        self.descriptor = descriptor
        self.query = query
        self.server = server
        self.exactCase = exactCase
    }

    /// Sends `query` to `server` and calls `done` once: on the reactor's thread when an answer,
    /// an error or the timeout comes, or before returning when the query cannot be sent.
    static func start(_ query: DNSMessage, server: Endpoint, timeout: Duration, exactCase: Bool, done: @escaping Done) {
        let fd = Sys.socket(SOCK_DGRAM, for: server)
        guard fd >= 0 else { return done(.failure(.unreachable(-fd))) }
        let descriptor = Descriptor(fd)
        let connected = Sys.connect(fd, server)
        if connected < 0 {
            descriptor.retire()
            return done(.failure(.unreachable(Int32(-connected))))
        }
        let exchange = DNSUDPExchange(descriptor: descriptor, query: query, server: server, exactCase: exactCase, done: done)
        do {
            try Reactor.start(for: "strToAddr")
        } catch {
            descriptor.retire()
            return done(.failure(.unreachable(error.errno ?? ENOMEM)))
        }
        switch Reactor.shared.register(descriptor, events: EpollEvents.input, handler: exchange) {
        case .success(let registration):
            exchange.state.withLock { $0.registration = registration }
        case .failure(let error):
            descriptor.retire()
            return done(.failure(.unreachable(error.errno ?? ENOMEM)))
        }
        // The timer holds the exchange (the reactor holds handlers weakly) until it ends.
        let timer = Reactor.shared.schedule(after: timeout) { exchange.finish(.failure(.timedOut)) }
        exchange.state.withLock { $0.timer = timer }
        let sent = query.encoded().withUnsafeBytes { Sys.send(fd, $0, flags: Sys.msgNoSignal | Sys.msgDontWait) }
        if sent < 0 { exchange.finish(.failure(.unreachable(Int32(-sent)))) }
    }

    func handle(events: UInt32) {
        if let answer = receive() { finish(answer) }
    }

    /// Reads every datagram waiting; the answer or a socket error ends the exchange, anything
    /// else is passed over (nil: go on waiting).
    private func receive() -> DNSExchange.Answer? {
        descriptor.withDescriptor { fd -> DNSExchange.Answer? in
            withUnsafeTemporaryAllocation(byteCount: DNSExchange.udpBuffer, alignment: 8) { buffer -> DNSExchange.Answer? in
                while true {
                    let (length, sender) = Sys.receiveDatagram(fd, buffer, flags: Sys.msgDontWait)
                    if length < 0 {
                        if length == SyscallErrors.again { return nil }
                        if length == SyscallErrors.interrupted { continue }
                        // An ICMP error for the query (port unreachable: nothing listens there).
                        return .failure(.unreachable(Int32(-length)))
                    }
                    let bytes = [UInt8](UnsafeRawBufferPointer(rebasing: buffer[0..<length]))
                    guard sender == server, let answer = try? DNSMessage(decoding: bytes) else {
                        // From someone else, or not a message at all: not the answer.
                        if sender == server, length >= 2, UInt16(bytes[0]) << 8 | UInt16(bytes[1]) == query.id {
                            return .failure(.malformed("the server's answer cannot be read"))
                        }
                        continue
                    }
                    if DNSExchange.matches(answer, query, exactCase: exactCase) { return .success(answer) }
                }
            }
        } ?? nil
    }

    private func finish(_ answer: DNSExchange.Answer) {
        let taken = state.withLock { state -> (Done, Reactor.Registration?, Reactor.Timer?)? in
            guard let done = state.done else { return nil }
            defer { state = State() }
            return (done, state.registration, state.timer)
        }
        guard let (done, registration, timer) = taken else { return }
        if let registration { Reactor.shared.deregister(registration, descriptor) }
        if let timer { Reactor.shared.cancel(timer) }
        descriptor.retire()
        done(answer)
    }
}
