// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import CMacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// One ICMP echo (MacTCP's `IPCtlEchoICMP`): a socket of its own, one request, and the first
/// reply that is this echo's, or the ICMP error about it, or the deadline.
///
/// The socket is Linux's ICMP datagram socket where `net.ipv4.ping_group_range` admits the
/// process's group (the kernel then picks the identifier and hands this socket only replies
/// with it), otherwise a raw socket where the process has `CAP_NET_RAW` (filtered to echo
/// replies; every raw socket sees every reply, so each echo has an identifier of its own and
/// a sequence number from one counter). A reply counts only if its identifier, sequence,
/// source and data are this echo's; anything else is ignored. ICMP errors come through the
/// socket's error queue (`IP_RECVERR`, `IPV6_RECVERR`) with the request they are about, so
/// they are matched the same way.
///
/// The reactor watches the socket and a reactor timer ends the wait, so blocking and async
/// callers wait on the same outcome: the blocking one on a lock, the async one suspended.
final class ICMPEcho: ReactorHandler, Sendable {
    enum Outcome: Sendable {
        case reply(ICMPEchoReply)
        case failed(MacTCPError)
        case cancelled
    }

    private struct State {
        var outcome: Outcome?
        var continuation: CheckedContinuation<Outcome, Never>?
        var registration: Reactor.Registration?
        var timer: Reactor.Timer?
        /// When the request left: read just before it is sent (after the socket is watched).
        var requestSent: ContinuousClock.Instant?
    }

    static let operation = "echoICMP"
    private static let sequences = Atomic<UInt16>(UInt16.random(in: 0...UInt16.max))

    private let state = Lock(State())
    private let descriptor: Descriptor
    private let destination: IPAddress
    private let ipv6: Bool
    private let raw: Bool
    private let identifier: UInt16
    private let sequence: UInt16
    private let payload: [UInt8]

    private init(descriptor: Descriptor, destination: IPAddress, raw: Bool, identifier: UInt16, sequence: UInt16, payload: [UInt8]) {
        self.descriptor = descriptor
        self.destination = destination
        ipv6 = destination.isIPv6
        self.raw = raw
        self.identifier = identifier
        self.sequence = sequence
        self.payload = payload
    }

    /// The largest echo payload: 65,535 − 20 − 8 to IPv4, 65,535 − 8 to IPv6.
    static func maximumData(ipv6: Bool) -> Int { ipv6 ? 65_527 : 65_507 }

    /// Checks the arguments, opens the socket, sends the request and starts watching for
    /// the answer until `timeout` has passed.
    static func start(to address: IPAddress, data: [UInt8], timeout: Duration, timeToLive: Int) throws(MacTCPError) -> ICMPEcho {
        let ipv6 = address.isIPv6
        try check(address, data: data, timeout: timeout, timeToLive: timeToLive)
        try Reactor.start(for: operation)
        let (fd, raw) = try openSocket(ipv6: ipv6)
        let descriptor = Descriptor(fd)
        if timeToLive > 0 {
            _ =
                ipv6
                ? Sys.setOption(fd, Int32(IPPROTO_IPV6), Int32(IPV6_UNICAST_HOPS), Int32(timeToLive))
                : Sys.setOption(fd, Int32(IPPROTO_IP), Int32(IP_TTL), Int32(timeToLive))
        }
        var identifier = UInt16.random(in: 0...UInt16.max)
        if !raw {
            // The kernel's identifier for this socket: its "port", given by binding it.
            _ = Sys.bind(fd, .any(port: 0, ipv6: ipv6))
            identifier = Sys.localEndpoint(fd)?.port ?? 0
        }
        let sequence = sequences.wrappingAdd(1, ordering: .relaxed).newValue
        let request = packet(type: ipv6 ? 128 : 8, identifier: identifier, sequence: sequence, data: data, checksum: !ipv6)
        let echo = ICMPEcho(
            descriptor: descriptor, destination: address, raw: raw, identifier: identifier, sequence: sequence, payload: data)
        switch Reactor.shared.register(descriptor, events: EpollEvents.input, handler: echo) {
        case .success(let registration):
            echo.state.withLock { $0.registration = registration }
        case .failure(let error):
            descriptor.retire()
            throw error.with(operation: operation)
        }
        echo.state.withLock { $0.requestSent = .now }
        let sent = request.withUnsafeBytes { bytes in
            Sys.send(fd, bytes, to: Endpoint(address, port: 0), flags: Sys.msgNoSignal | Sys.msgDontWait)
        }
        if sent < 0 {
            echo.complete(.failed(sendFailure(Int32(-sent), to: address)))
            return echo
        }
        let timer = Reactor.shared.schedule(after: timeout) { [weak echo] in
            echo?.complete(
                .failed(
                    MacTCPError.icmpEchoTimeoutErr.with(
                        operation: operation, detail: "no reply from \(address) within \(timeout) (icmp_seq \(sequence))")))
        }
        echo.state.withLock { state in
            if state.outcome == nil { state.timer = timer } else { Reactor.shared.cancel(timer) }
        }
        return echo
    }

    /// Blocks until the echo is answered, fails or times out.
    func wait() -> Outcome {
        state.wait(until: .never) { $0.outcome } ?? .cancelled
    }

    /// Suspends until the echo is answered, fails or times out; cancelling the task ends the
    /// echo (`.cancelled`).
    func wait() async -> Outcome {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
                let now = state.withLock { state -> Outcome? in
                    if let outcome = state.outcome { return outcome }
                    if Task.isCancelled { return .cancelled }
                    state.continuation = continuation
                    return nil
                }
                if let now { continuation.resume(returning: now) }
            }
        } onCancel: {
            complete(.cancelled)
        }
    }

    func handle(events: UInt32) {
        if let outcome = look() { complete(outcome) }
    }

    /// Ends the echo once: the outcome is kept, the socket closed, the waiter woken.
    private func complete(_ outcome: Outcome) {
        let finished = state.withLock { state -> (Reactor.Registration?, Reactor.Timer?, CheckedContinuation<Outcome, Never>?)? in
            guard state.outcome == nil else { return nil }
            state.outcome = outcome
            self.state.broadcastWhileLocked()
            defer {
                state.registration = nil
                state.timer = nil
                state.continuation = nil
            }
            return (state.registration, state.timer, state.continuation)
        }
        guard let (registration, timer, continuation) = finished else { return }
        if let registration { Reactor.shared.deregister(registration, descriptor) }
        if let timer { Reactor.shared.cancel(timer) }
        descriptor.retire()
        continuation?.resume(returning: outcome)
    }

    // MARK: - Reading what came

    /// Reads everything waiting: ICMP errors from the error queue, then messages. Returns
    /// the outcome once one is this echo's.
    private func look() -> Outcome? {
        descriptor.withDescriptor { fd -> Outcome? in
            var buffer = [UInt8](repeating: 0, count: payload.count + 8 + 60 + 1)
            while true {
                var entry = mt_errq_entry()
                while Sys.nextErrorQueueEntry(fd, &entry) == 1 {
                    if let error = error(for: entry) { return .failed(error) }
                }
                var from = [UInt8](repeating: 0, count: 16)
                var ttl: Int32 = -1
                var age: Int64 = -1
                let count = buffer.withUnsafeMutableBytes { bytes in
                    Int(mt_icmp_receive(fd, bytes.baseAddress, bytes.count, &from, &ttl, &age))
                }
                let arrived = ContinuousClock.now - .nanoseconds(max(0, age))
                if count == -Int(EAGAIN) { return nil }
                if count == -Int(EINTR) || count < 0 { continue }  // a pending error: the queue has it
                if let reply = reply(in: buffer[0..<count], from: from, ttl: Int(ttl), arrived: arrived) { return .reply(reply) }
            }
        } ?? nil
    }

    /// The reply in a message, if the message is this echo's reply.
    private func reply(in message: ArraySlice<UInt8>, from: [UInt8], ttl: Int, arrived: ContinuousClock.Instant) -> ICMPEchoReply? {
        var icmp = message
        var timeToLive = ttl
        if raw && !ipv6 {
            // A raw IPv4 socket gets the IP header too.
            guard let first = message.first else { return nil }
            let headerLength = Int(first & 0x0F) * 4
            guard message.count >= headerLength + 8 else { return nil }
            if timeToLive < 0 { timeToLive = Int(message[message.startIndex + 8]) }
            icmp = message.dropFirst(headerLength)
        }
        let bytes = Array(icmp)
        guard bytes.count == 8 + payload.count, bytes[0] == (ipv6 ? 129 : 0), bytes[1] == 0,
            UInt16(bytes[4]) << 8 | UInt16(bytes[5]) == identifier,
            UInt16(bytes[6]) << 8 | UInt16(bytes[7]) == sequence,
            IPAddress(kernelBytes: from) == Self.comparable(destination),
            bytes[8...].elementsEqual(payload)
        else { return nil }
        // (The arrival is the kernel's clock read back onto this one: never before the request.)
        let sent = state.withLock { $0.requestSent } ?? arrived
        return ICMPEchoReply(
            requestSent: sent, replyReceived: max(arrived, sent), echoedData: Array(bytes[8...]), timeToLive: max(0, timeToLive),
            from: destination, sequence: sequence)
    }

    /// The error an error-queue entry reports, if it is about this echo's request.
    private func error(for entry: mt_errq_entry) -> MacTCPError? {
        let request = withUnsafeBytes(of: entry.payload) { Array($0) }
        guard entry.payload_length >= 8, request[0] == (ipv6 ? 128 : 8),
            UInt16(request[4]) << 8 | UInt16(request[5]) == identifier,
            UInt16(request[6]) << 8 | UInt16(request[7]) == sequence
        else { return nil }
        let offender = IPAddress(kernelBytes: entry.offender6)
        guard Int(entry.kind) == Int(MT_ERRQ_ICMP) else {
            // A local error about the request (a datagram too large for the link, say).
            return Self.sendFailure(entry.err, to: destination)
        }
        let message = ICMPTypeAndCode(type: entry.icmp_type, code: entry.icmp_code, isICMPv6: entry.icmp6 != 0)
        var error = Self.code(for: message).with(
            operation: Self.operation, errno: entry.err == 0 ? nil : entry.err,
            detail: "\(message) from \(offender) about the echo to \(destination) (icmp_seq \(sequence))")
        error.icmp = message
        return error
    }

    /// MacTCP's code for an ICMP error answering an echo: network unreachable or no route is
    /// `ipRouteErr`; host unreachable is `ipDestDeadErr`; fragmentation needed (packet too
    /// big) is `ipDontFragErr`; everything else that ends an echo (time exceeded, port or
    /// protocol unreachable, administratively prohibited, parameter problem) `ipDestDeadErr`.
    static func code(for message: ICMPTypeAndCode) -> MacTCPError {
        switch (message.isICMPv6, message.type, message.code) {
        case (false, 3, 0), (false, 3, 6), (false, 3, 11), (true, 1, 0), (true, 1, 6): return .ipRouteErr
        case (false, 3, 4), (true, 2, _): return .ipDontFragErr
        default: return .ipDestDeadErr
        }
    }

    /// The error for a request the kernel would not send.
    private static func sendFailure(_ errno: Int32, to address: IPAddress) -> MacTCPError {
        let detail = "cannot send an echo request to \(address)"
        switch errno {
        case ENETUNREACH: return MacTCPError.ipRouteErr.with(operation: operation, errno: errno, detail: detail + ": no route")
        case EHOSTUNREACH: return MacTCPError.ipDestDeadErr.with(operation: operation, errno: errno, detail: detail)
        case EMSGSIZE: return MacTCPError.ipDontFragErr.with(operation: operation, errno: errno, detail: detail + ": too large")
        case ENOBUFS, ENOMEM: return MacTCPError.insufficientResources.with(operation: operation, errno: errno, detail: detail)
        case EACCES, EPERM: return MacTCPError.ipBadAddr.with(operation: operation, errno: errno, detail: detail + ": not allowed")
        default: return MacTCPError.ipRouteErr.with(operation: operation, errno: errno, detail: detail)
        }
    }

    // MARK: - The socket and the request

    private static func check(_ address: IPAddress, data: [UInt8], timeout: Duration, timeToLive: Int) throws(MacTCPError) {
        switch address {
        case .v4(0): throw MacTCPError.ipBadAddr.with(operation: operation, detail: "the destination must not be 0")
        case .v6(let v6) where v6 == .unspecified:
            throw MacTCPError.ipBadAddr.with(operation: operation, detail: "the destination must not be ::")
        case .v6(let v6) where v6.isLinkLocal && v6.scopeID == 0:
            throw MacTCPError.ipBadAddr.with(
                operation: operation, detail: "\(address) is link-local: name its interface, as in \(address)%eth0")
        default: break
        }
        let limit = maximumData(ipv6: address.isIPv6)
        if data.count > limit {
            throw MacTCPError.invalidLength.with(
                operation: operation, detail: "an echo carries at most \(limit) bytes of data to \(address), not \(data.count)")
        }
        if timeout <= .zero {
            throw MacTCPError.invalidLength.with(operation: operation, detail: "the timeout must be more than zero, not \(timeout)")
        }
        if !(0...255).contains(timeToLive) {
            throw MacTCPError.invalidLength.with(operation: operation, detail: "timeToLive must be 0…255, not \(timeToLive)")
        }
    }

    /// An ICMP datagram socket, or a raw one, for the family; the error that names the sysctl
    /// when neither is allowed.
    private static func openSocket(ipv6: Bool) throws(MacTCPError) -> (Int32, raw: Bool) {
        var raw = false
        var fd = Sys.icmpSocket(ipv6: ipv6, raw: false)
        let datagramError = fd < 0 ? -fd : 0
        if fd < 0 {
            fd = Sys.icmpSocket(ipv6: ipv6, raw: true)
            raw = true
        }
        guard fd >= 0 else {
            let error = -fd
            if SyscallErrors.isResourceShortage(error) {
                throw MacTCPError.insufficientResources.with(operation: operation, errno: error, detail: "cannot create an ICMP socket")
            }
            let range =
                (try? Sys.readFile("/proc/sys/net/ipv4/ping_group_range", limit: 100).get())
                .map { String(decoding: $0, as: UTF8.self).split(whereSeparator: \.isWhitespace).joined(separator: " ") } ?? "?"
            throw MacTCPError.ipNoCnfgErr.with(
                operation: operation, errno: datagramError == 0 ? error : datagramError,
                detail: "ICMP echo needs the process's group (gid \(getgid())) within net.ipv4.ping_group_range "
                    + "(now \"\(range)\" in this network namespace) for an ICMP datagram socket, or CAP_NET_RAW for a raw one")
        }
        if ipv6 {
            _ = Sys.setOption(fd, Int32(IPPROTO_IPV6), Int32(IPV6_RECVERR), 1)
            _ = Sys.setOption(fd, Int32(IPPROTO_IPV6), Int32(IPV6_RECVHOPLIMIT), 1)
        } else {
            _ = Sys.setOption(fd, Int32(IPPROTO_IP), Int32(IP_RECVERR), 1)
            _ = Sys.setOption(fd, Int32(IPPROTO_IP), Int32(IP_RECVTTL), 1)
        }
        // The kernel's time of arrival with each reply: the round trip ends when the reply
        // came in, not when a thread got to read it (iputils' ping measures the same way).
        _ = Sys.setOption(fd, SOL_SOCKET, Int32(SO_TIMESTAMPNS), 1)
        if raw { Sys.passOnlyEchoReplies(fd, ipv6: ipv6) }
        return (fd, raw)
    }

    /// An echo request: type, code 0, the checksum (RFC 1071; the kernel computes ICMPv6's),
    /// identifier, sequence and data.
    static func packet(type: UInt8, identifier: UInt16, sequence: UInt16, data: [UInt8], checksum: Bool) -> [UInt8] {
        var bytes: [UInt8] = [
            type, 0, 0, 0, UInt8(identifier >> 8), UInt8(identifier & 0xFF), UInt8(sequence >> 8), UInt8(sequence & 0xFF),
        ]
        bytes += data
        if checksum {
            var sum: UInt32 = 0
            var index = 0
            while index + 1 < bytes.count {
                sum += UInt32(bytes[index]) << 8 | UInt32(bytes[index + 1])
                index += 2
            }
            if index < bytes.count { sum += UInt32(bytes[index]) << 8 }
            while sum >> 16 != 0 { sum = (sum & 0xFFFF) + (sum >> 16) }
            let value = ~UInt16(sum)
            bytes[2] = UInt8(value >> 8)
            bytes[3] = UInt8(value & 0xFF)
        }
        return bytes
    }

    /// The destination as a reply's source compares to it (without its scope).
    private static func comparable(_ address: IPAddress) -> IPAddress {
        guard case .v6(let v6) = address, v6.scopeID != 0 else { return address }
        return .v6(IPv6Address(unchecked: v6.bytes))
    }
}
