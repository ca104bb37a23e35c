// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// Why one server gave no usable answer.
enum DNSExchangeFailure: Error, Equatable, CustomStringConvertible {
    /// Nothing that matched the question arrived before the deadline.
    case timedOut
    /// The server could not be reached (the errno: no route, refused, …).
    case unreachable(Int32)
    /// What came back matched the question but could not be read.
    case malformed(String)

    var description: String {
        switch self {
        case .timedOut: return "no answer in time"
        case .unreachable(let errno): return "unreachable (\(String(cString: strerror(errno))))"
        case .malformed(let reason): return "a malformed answer (\(reason))"
        }
    }
}

/// One question asked of one server, and its answer: over UDP from a socket of its own (so
/// a random source port) with a random ID, then over TCP when the answer is truncated. The
/// UDP exchange waits on the reactor (``DNSUDPExchange``), so that any number of questions
/// are in flight without a thread each; the rare TCP exchange blocks one of the resolver's
/// library's delivery threads (``DeliveryPool/run(_:)``).
///
/// Only a response to this very query is taken: the ID, the opcode and the question (the
/// name without regard to case) must be the query's, and it must come from the address and
/// port asked. Anything else, from anyone, is ignored and the wait goes on until the deadline.
enum DNSExchange {
    typealias Answer = Result<DNSMessage, DNSExchangeFailure>

    /// The largest UDP answer taken (EDNS0's 1,232 bytes are asked for; some servers send more).
    static let udpBuffer = 65_535

    /// Asks `server` (IPv4 or IPv6) the question of `query` (whose ID is replaced by a random
    /// one) and calls `done` once with the answer: on the reactor's thread, on a worker
    /// thread, or before returning when the question cannot even be sent.
    static func ask(
        _ query: DNSMessage, server: Endpoint, timeout: Duration, tcpOnly: Bool = false, exactCase: Bool = false,
        done: @escaping @Sendable (Answer) -> Void
    ) {
        var query = query
        query.id = UInt16.random(in: 0...UInt16.max)
        let overTCP: @Sendable () -> Void = { [query] in
            DeliveryPool.shared.run {
                done(Self.overTCP(query, server: server, deadline: Deadline(timeout: timeout), exactCase: exactCase))
            }
        }
        if tcpOnly { return overTCP() }
        DNSUDPExchange.start(query, server: server, timeout: timeout, exactCase: exactCase) { answer in
            guard case .success(let message) = answer, message.truncated else { return done(answer) }
            overTCP()
        }
    }

    /// The blocking form of ``ask(_:server:timeout:tcpOnly:exactCase:done:)``, until `deadline`.
    static func ask(_ query: DNSMessage, server: Endpoint, deadline: Deadline, tcpOnly: Bool = false, exactCase: Bool = false)
        -> Answer
    {
        let answer = OneShot<Answer>()
        ask(query, server: server, timeout: deadline.remaining ?? .seconds(86_400), tcpOnly: tcpOnly, exactCase: exactCase) {
            answer.give($0)
        }
        return answer.wait()
    }

    /// Whether `answer` is the response to `query`; with `exactCase` (0x20 randomisation)
    /// the question's name must come back byte for byte.
    static func matches(_ answer: DNSMessage, _ query: DNSMessage, exactCase: Bool = false) -> Bool {
        guard answer.isResponse, answer.id == query.id, answer.opcode == query.opcode,
            answer.questions.count == query.questions.count
        else { return false }
        return zip(answer.questions, query.questions).allSatisfy { asked, question in
            asked.type == question.type && asked.dnsClass == question.dnsClass
                && (exactCase ? asked.name == question.name : asked.name.sameName(as: question.name))
        }
    }

    private static func overTCP(_ query: DNSMessage, server: Endpoint, deadline: Deadline, exactCase: Bool) -> Result<
        DNSMessage, DNSExchangeFailure
    > {
        let fd = Sys.socket(SOCK_STREAM, for: server)
        guard fd >= 0 else { return .failure(.unreachable(-fd)) }
        defer { Sys.close(fd) }
        var result = Sys.connect(fd, server)
        if result == SyscallErrors.inProgress {
            let ready = Sys.poll(fd, events: Sys.pollOut, timeoutMilliseconds: deadline.pollMilliseconds)
            if ready == 0 { return .failure(.timedOut) }
            let error = Sys.takeSocketError(fd)
            result = error == 0 ? 0 : -Int(error)
        }
        if result < 0 { return .failure(.unreachable(Int32(-result))) }
        let message = query.encoded()
        let framed = [UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
        var offset = 0
        while offset < framed.count {
            let sent = framed.withUnsafeBytes {
                Sys.send(fd, UnsafeRawBufferPointer(rebasing: $0[offset...]), flags: Sys.msgNoSignal)
            }
            if sent == SyscallErrors.again {
                if Sys.poll(fd, events: Sys.pollOut, timeoutMilliseconds: deadline.pollMilliseconds) == 0 { return .failure(.timedOut) }
                continue
            }
            if sent < 0 { return .failure(.unreachable(Int32(-sent))) }
            offset += sent
        }
        guard case .success(let prefix) = read(fd, count: 2, deadline: deadline) else { return .failure(.timedOut) }
        let length = Int(prefix[0]) << 8 | Int(prefix[1])
        switch read(fd, count: length, deadline: deadline) {
        case .failure(let failure):
            return .failure(failure)
        case .success(let bytes):
            guard let answer = try? DNSMessage(decoding: bytes) else {
                return .failure(.malformed("the server's answer over TCP cannot be read"))
            }
            return matches(answer, query, exactCase: exactCase)
                ? .success(answer) : .failure(.malformed("the answer over TCP is not for the question"))
        }
    }

    /// Exactly `count` bytes from a stream socket, before the deadline.
    private static func read(_ fd: Int32, count: Int, deadline: Deadline) -> Result<[UInt8], DNSExchangeFailure> {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            if Sys.poll(fd, events: Sys.pollIn, timeoutMilliseconds: deadline.pollMilliseconds) == 0 { return .failure(.timedOut) }
            let got = bytes.withUnsafeMutableBytes {
                Sys.receive(fd, UnsafeMutableRawBufferPointer(rebasing: $0[offset...]), flags: Sys.msgDontWait)
            }
            if got == SyscallErrors.again { continue }
            if got <= 0 { return .failure(got == 0 ? .malformed("the server closed before the whole answer") : .unreachable(Int32(-got))) }
            offset += got
        }
        return .success(bytes)
    }
}
