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
/// a random source port) with a random ID, then over TCP when the answer is truncated. It
/// blocks the calling thread until the answer or the deadline (the resolver calls it from
/// threads of its own).
///
/// Only a response to this very query is taken: the ID, the opcode and the question (the
/// name without regard to case) must be the query's, and it must come from the address and
/// port asked. Anything else, from anyone, is ignored and the wait goes on until the deadline.
enum DNSExchange {
    /// The largest UDP answer taken (EDNS0's 1,232 bytes are asked for; some servers send more).
    static let udpBuffer = 65_535

    /// Asks `server` (IPv4 or IPv6) the question of `query` (whose ID is replaced by a random one).
    static func ask(
        _ query: DNSMessage, server: Endpoint, deadline: Deadline, tcpOnly: Bool = false, exactCase: Bool = false
    ) -> Result<DNSMessage, DNSExchangeFailure> {
        var query = query
        query.id = UInt16.random(in: 0...UInt16.max)
        if !tcpOnly {
            let answer = overUDP(query, server: server, deadline: deadline, exactCase: exactCase)
            guard case .success(let message) = answer, message.truncated else { return answer }
        }
        return overTCP(query, server: server, deadline: deadline, exactCase: exactCase)
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

    private static func overUDP(_ query: DNSMessage, server: Endpoint, deadline: Deadline, exactCase: Bool) -> Result<
        DNSMessage, DNSExchangeFailure
    > {
        let fd = Sys.socket(SOCK_DGRAM, for: server)
        guard fd >= 0 else { return .failure(.unreachable(-fd)) }
        defer { Sys.close(fd) }
        // Connected: the kernel takes datagrams from the server's address and port only, and
        // reports its ICMP port unreachable as ECONNREFUSED (nothing listens there).
        let connected = Sys.connect(fd, server)
        if connected < 0 { return .failure(.unreachable(Int32(-connected))) }
        let bytes = query.encoded()
        let sent = bytes.withUnsafeBytes { Sys.send(fd, $0, flags: Sys.msgNoSignal | Sys.msgDontWait) }
        if sent < 0 { return .failure(.unreachable(Int32(-sent))) }
        var buffer = [UInt8](repeating: 0, count: udpBuffer)
        while true {
            let ready = Sys.poll(fd, events: Sys.pollIn, timeoutMilliseconds: deadline.pollMilliseconds)
            if ready == 0 {
                if deadline.hasPassed { return .failure(.timedOut) }
                continue
            }
            let (length, sender) = buffer.withUnsafeMutableBytes { Sys.receiveDatagram(fd, $0, flags: Sys.msgDontWait) }
            if length < 0 {
                // An ICMP error for the query (port unreachable: nothing listens there).
                if length == SyscallErrors.again { continue }
                return .failure(.unreachable(Int32(-length)))
            }
            guard sender == server, let answer = try? DNSMessage(decoding: Array(buffer[0..<length])) else {
                // From someone else, or not a message at all: not the answer.
                if sender == server, length >= 2, UInt16(buffer[0]) << 8 | UInt16(buffer[1]) == query.id {
                    return .failure(.malformed("the server's answer cannot be read"))
                }
                continue
            }
            if matches(answer, query, exactCase: exactCase) { return .success(answer) }
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
