// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The UDP subsystem: MacTCP's UDP stream, its datagrams and events. It calls the system layer
// (sockets, the error queue for ICMP reports), the reactor and `Events/`, and fills in the
// `ICMP/` reports.

import CMacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// A MacTCP UDP stream: a local UDP port that reads and writes datagrams, with an ASR.
///
/// ```swift
/// let udp = try UDPStream(port: 0)
/// try udp.write(host: IPv4.loopback, port: udp.port, Array("ping".utf8))   // to itself
/// let datagram = try udp.read(timeout: .seconds(2))
/// print(datagram.data, IPv4.string(datagram.remoteHost))  // → [112, 105, 110, 103] 127.0.0.1
/// ```
///
/// ICMP errors about datagrams the stream sent are reported exactly (type, code, the
/// reporting host and the original destination) through ``lastICMPReport`` and the ASR's
/// ``UDPEvent/icmpReceived``; they never close the stream. The stream may be used from
/// several threads at once.
///
/// The corresponding MacTCP call for creating a stream is `UDPCreate`.
public final class UDPStream: Sendable {
    /// The largest UDP payload IPv4 can carry (65,535 − 20 − 8).
    public static let maximumDatagramSize = 65507
    /// The largest UDP payload IPv6 can carry without jumbograms (65,535 − 8).
    public static let maximumIPv6DatagramSize = 65527

    private struct State {
        var released = false
        var readers = 0
        var dataArrivalArmed = true
        var lastICMPReport: ICMPReport?
        var checksumOff = false
    }

    private let descriptor: Descriptor
    private let registration = Lock<Reactor.Registration?>(nil)
    private let state = Lock(State())
    private let delivery = EventDelivery<UDPEvent>()

    /// The local port: the real one, also when 0 was asked for.
    public let port: UInt16

    /// Creates a UDP stream on a local port.
    ///
    /// - Parameters:
    ///   - receiveBufferSize: The receive buffer in bytes (at least 2048, MacTCP's minimum);
    ///     nil keeps the kernel's default. The kernel caps it at `net.core.rmem_max`.
    ///   - port: The local port; 0 lets the system choose (``port`` tells which).
    /// - Throws: ``MacTCPError/duplicateSocket`` when the port is in use;
    ///   ``MacTCPError/invalidLength`` for a buffer below 2048 bytes;
    ///   ``MacTCPError/insufficientResources`` when no socket can be created.
    ///
    /// The corresponding MacTCP call is `UDPCreate`.
    public init(receiveBufferSize: Int? = nil, port: UInt16 = 0) throws {
        let operation = "UDPStream.init"
        if let size = receiveBufferSize, size < 2048 || size > Int(Int32.max) {
            throw MacTCPError.invalidLength.with(
                operation: operation,
                detail: "receiveBufferSize must be at least 2048 bytes (MacTCP's minimum) and at most \(Int32.max), not \(size)"
            )
        }
        try Reactor.start(for: operation)
        // Dual stack: an IPv6 socket with IPV6_V6ONLY off takes and sends IPv4 datagrams too
        // (IPv4 where the machine has no IPv6).
        var ipv6 = true
        var fd = Sys.socket(SOCK_DGRAM, ipv6: true)
        if fd == -EAFNOSUPPORT {
            ipv6 = false
            fd = Sys.udpSocket()
        }
        guard fd >= 0 else {
            throw MacTCPError.insufficientResources.with(operation: operation, errno: -fd, detail: "cannot create a socket")
        }
        let descriptor = Descriptor(fd)
        _ = Sys.setOption(fd, Int32(IPPROTO_IP), Int32(IP_RECVERR), 1)
        if ipv6 {
            _ = Sys.setOption(fd, Int32(IPPROTO_IPV6), Int32(IPV6_V6ONLY), 0)
            _ = Sys.setOption(fd, Int32(IPPROTO_IPV6), Int32(IPV6_RECVERR), 1)
        }
        if let size = receiveBufferSize {
            _ = Sys.setOption(fd, Int32(SOL_SOCKET), Int32(SO_RCVBUF), Int32(clamping: size / 2))
        }
        let bound = Sys.bind(fd, .any(port: port, ipv6: ipv6))
        guard bound >= 0, let local = Sys.localEndpoint(fd) else {
            descriptor.retire()
            if bound == SyscallErrors.addressInUse {
                throw MacTCPError.duplicateSocket.with(
                    operation: operation, errno: EADDRINUSE, detail: "UDP port \(port) is already in use")
            }
            throw MacTCPError.ipBadAddr.with(operation: operation, errno: Int32(-bound), detail: "cannot bind UDP port \(port)")
        }
        self.descriptor = descriptor
        self.port = local.port
        switch Reactor.shared.register(descriptor, events: EpollEvents.input | EpollEvents.edgeTriggered, handler: self) {
        case .success(let value):
            registration.withLock { $0 = value }
        case .failure(let error):
            descriptor.retire()
            throw error.with(operation: operation)
        }
    }

    deinit {
        release()
    }

    /// The asynchronous service routine: called with ``UDPEvent/dataArrival`` (detail 0) or
    /// ``UDPEvent/icmpReceived`` (detail: the ICMP type in MacTCP's numbering). It runs on one
    /// of the library's event threads (see ``TCPStream/asr``), never on the caller's thread or
    /// the reactor's; events arrive in order, one at a time, and none is dropped, except that an
    /// ``UDPEvent/icmpReceived`` still waiting is replaced by the next one (so an ICMP flood
    /// keeps one waiting event; ``lastICMPReport`` has the latest report).
    ///
    /// The corresponding MacTCP field is the `notifyProc` of `UDPCreate`; in Python, `asr`.
    public var asr: (@Sendable (UDPEvent, Int) -> Void)? {
        get { delivery.handler.map(UDPEvent.routine(calling:)) }
        set { delivery.handler = UDPEvent.rawRoutine(calling: newValue) }
    }

    /// The events of this stream as an asynchronous sequence, for one consumer, from its
    /// first use until the stream is released.
    public var events: AsyncStream<(event: UDPEvent, detail: Int)> {
        delivery.sequence(finished: state.withLock { $0.released })
    }

    /// The most recent ICMP error about a datagram this stream sent, or nil.
    public var lastICMPReport: ICMPReport? {
        state.withLock { $0.lastICMPReport }
    }

    // MARK: - Reading

    /// Reads one datagram, waiting for one up to `timeout`.
    ///
    /// - Parameter timeout: How long to wait; `.zero` waits without limit.
    /// - Returns: The datagram (zero-length ones included) with its sender's host and port.
    /// - Throws: ``MacTCPError/commandTimeout`` when none came in time;
    ///   ``MacTCPError/connectionTerminated`` when the stream is released while reading;
    ///   ``MacTCPError/invalidLength`` for a negative timeout;
    ///   ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding MacTCP call is `UDPRead` (with `UDPBfrReturn`).
    public func read(timeout: Duration) throws -> UDPDatagram {
        let operation = "read"
        try Timeouts.validate(timeout, operation: operation)
        try state.withLock { state throws(MacTCPError) in
            try checkNotReleased(state, operation)
            state.readers += 1
        }
        defer {
            state.withLock {
                $0.readers -= 1
                $0.dataArrivalArmed = true
            }
        }
        let deadline = Deadline(timeout: timeout)
        while true {
            let outcome =
                descriptor.withDescriptor { fd -> ReadOutcome in
                    let ready = Sys.poll(fd, events: Sys.pollIn, timeoutMilliseconds: deadline.pollMilliseconds)
                    if ready < 0 { return .failed(Int32(-ready)) }
                    if ready == 0 { return .wait }
                    if ready & Sys.pollErr != 0 { serviceErrors(fd) }
                    return receiveOne(fd)
                } ?? .released
            switch outcome {
            case .datagram(let datagram):
                return datagram
            case .wait:
                if state.withLock({ $0.released }) {
                    throw MacTCPError.connectionTerminated.with(operation: operation, detail: "the stream was released while reading")
                }
                if deadline.hasPassed {
                    throw MacTCPError.commandTimeout.with(operation: operation, detail: "no datagram arrived in time")
                }
            case .released:
                throw MacTCPError.connectionTerminated.with(operation: operation, detail: "the stream was released while reading")
            case .failed(let error):
                throw MacTCPError.insufficientResources.with(operation: operation, errno: error, detail: "cannot read")
            }
        }
    }

    /// ``read(timeout:)-(Duration)`` with the timeout in seconds (0: without limit).
    ///
    /// - Parameter timeout: Seconds to wait; negative, non-finite or too large values throw
    ///   ``MacTCPError/invalidLength``.
    /// - Returns: The datagram with its sender.
    /// - Throws: As the `Duration` form.
    ///
    /// The corresponding MacTCP call is `UDPRead`.
    public func read(timeout: Double) throws -> UDPDatagram {
        try read(timeout: try Timeouts.duration(timeout, operation: "read"))
    }

    /// Room for any datagram (a UDP payload over IPv4 is at most 65,507 bytes).
    private static var largestDatagram: Int { 65536 }

    private enum ReadOutcome {
        case datagram(UDPDatagram)
        case wait
        case released
        case failed(Int32)
    }

    /// One non-blocking recvfrom. A pending ICMP error makes it fail once; the error queue
    /// is then drained (reporting the error) and the read goes on.
    ///
    /// A datagram must be read whole in one call, so the read goes to an array that can hold
    /// the largest; a datagram that fills less than half of it is copied into an array of its
    /// size (the large one goes straight back to malloc), so that a datagram kept by the
    /// caller never holds more than twice its size.
    private func receiveOne(_ fd: Int32) -> ReadOutcome {
        var read = DatagramRead(fd: fd)
        var data = ByteArray.make(capacity: Self.largestDatagram, from: &read)
        let (length, sender) = (read.length, read.sender)
        if length >= 0 {
            if data.count < data.capacity / 2 { data = data.withUnsafeBytes { Array($0) } }
            return .datagram(UDPDatagram(data: data, remoteAddress: sender.address, remotePort: sender.port))
        }
        if length == SyscallErrors.again { return .wait }
        if SyscallErrors.isICMPReport(Int32(-length)) {
            serviceErrors(fd)
            return .wait
        }
        if state.withLock({ $0.released }) { return .released }
        return .failed(Int32(-length))
    }

    // MARK: - Writing

    /// Sends one datagram.
    ///
    /// - Parameters:
    ///   - host: The destination IPv4 address (host byte order), not 0.
    ///   - port: The destination port, not 0.
    ///   - data: The payload, 0 to 65,507 bytes.
    ///   - checksum: Whether to compute the UDP checksum (`false` sends 0, "no checksum").
    /// - Throws: ``MacTCPError/ipBadAddr`` for host or port 0; ``MacTCPError/invalidLength``
    ///   for more than 65,507 bytes; ``MacTCPError/ipRouteErr`` when there is no route;
    ///   ``MacTCPError/ipDontFragErr`` when the datagram is larger than the path allows;
    ///   ``MacTCPError/insufficientResources`` when the kernel has no buffer for it;
    ///   ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding MacTCP call is `UDPWrite`.
    public func write(host: UInt32, port: UInt16, _ data: [UInt8], checksum: Bool = true) throws {
        try write(to: Endpoint(host: host, port: port), data, checksum: checksum)
    }

    /// Sends one datagram to an address of either family; the `UInt32` form's IPv6
    /// counterpart.
    ///
    /// - Parameters:
    ///   - address: The destination: IPv4 (not 0) or IPv6 (not `::`; a link-local address
    ///     with its scope).
    ///   - port: The destination port, not 0.
    ///   - data: The payload: 0 to 65,507 bytes to IPv4, 0 to 65,527 to IPv6.
    ///   - checksum: Whether to compute the UDP checksum (IPv6 always has one).
    /// - Throws: As ``write(host:port:_:checksum:)``.
    ///
    /// The corresponding MacTCP call is `UDPWrite` (IPv4 only in MacTCP).
    public func write(address: IPAddress, port: UInt16, _ data: [UInt8], checksum: Bool = true) throws {
        try write(to: Endpoint(address, port: port), data, checksum: checksum)
    }

    /// Sends one datagram to a host given by name or as an address literal: a name is
    /// resolved through `resolver` (``DNR/addresses(for:)``) and the datagram goes to the
    /// first of its addresses in RFC 6724's order.
    ///
    /// - Parameters:
    ///   - host: A host name or an address literal.
    ///   - port: The destination port, not 0.
    ///   - data: The payload.
    ///   - checksum: Whether to compute the UDP checksum.
    ///   - resolver: The resolver that turns a name into addresses.
    /// - Throws: The resolver's error when the name cannot be resolved; otherwise as
    ///   ``write(address:port:_:checksum:)``.
    ///
    /// The corresponding MacTCP calls are `StrToAddr` followed by `UDPWrite`.
    public func write(host: String, port: UInt16, _ data: [UInt8], checksum: Bool = true, resolver: DNR = .shared) throws {
        let address = try IPAddress(host) ?? resolver.addresses(for: host, deadline: .never)[0]
        try write(address: address, port: port, data, checksum: checksum)
    }

    private func write(to destination: Endpoint, _ data: [UInt8], checksum: Bool) throws(MacTCPError) {
        let operation = "write"
        try state.withLock { state throws(MacTCPError) in try checkNotReleased(state, operation) }
        var problem: String?
        switch destination.address {
        case .v4(0): problem = "the host must not be 0"
        case .v6(let v6) where v6 == .unspecified: problem = "the host must not be ::"
        case .v6(let v6) where v6.isLinkLocal && v6.scopeID == 0:
            problem = "\(destination.address) is link-local: name its interface, as in \(destination.address)%eth0"
        default: if destination.port == 0 { problem = "the port must not be 0" }
        }
        if let problem { throw MacTCPError.ipBadAddr.with(operation: operation, detail: problem) }
        let limit = destination.address.isIPv6 ? Self.maximumIPv6DatagramSize : Self.maximumDatagramSize
        if data.count > limit {
            throw MacTCPError.invalidLength.with(
                operation: operation,
                detail: "a datagram carries at most \(limit) bytes to \(destination.address.isIPv6 ? "IPv6" : "IPv4"), not \(data.count)"
            )
        }
        let result = data.withUnsafeBytes { bytes in
            descriptor.withDescriptor { fd -> Int in
                setChecksum(checksum, fd)
                var attempts = 0
                while true {
                    let sent = Sys.send(fd, bytes, to: destination, flags: Sys.msgNoSignal | Sys.msgDontWait)
                    if sent >= 0 { return sent }
                    attempts += 1
                    if sent == SyscallErrors.again && attempts < 1000 {
                        _ = Sys.poll(fd, events: Sys.pollOut, timeoutMilliseconds: 1000)
                        continue
                    }
                    // A pending ICMP error fails the next send once: report it and send again.
                    // The error is an earlier datagram's (a send never fails for its own ICMP
                    // reply), and the reactor may have taken its queue entry first: send again
                    // whether or not this look finds one.
                    if SyscallErrors.isICMPReport(Int32(-sent)) && attempts < 4 {
                        serviceErrors(fd)
                        continue
                    }
                    return sent
                }
            } ?? -Int(EBADF)
        }
        guard result < 0 else { return }
        let error = Int32(-result)
        let text = "cannot send to \(destination)"
        switch error {
        case EBADF:
            throw MacTCPError.invalidStreamPtr.with(operation: operation, detail: "the stream has been released")
        case ENETUNREACH, EHOSTUNREACH:
            throw MacTCPError.ipRouteErr.with(operation: operation, errno: error, detail: text + ": no route")
        case EMSGSIZE:
            throw MacTCPError.ipDontFragErr.with(operation: operation, errno: error, detail: text + ": larger than the path allows")
        case ENOBUFS, ENOMEM, EAGAIN:
            throw MacTCPError.insufficientResources.with(operation: operation, errno: error, detail: text)
        default:
            throw MacTCPError.ipRouteErr.with(operation: operation, errno: error, detail: text)
        }
    }

    /// Turns the UDP checksum off or on (SO_NO_CHECK) when it changes.
    private func setChecksum(_ checksum: Bool, _ fd: Int32) {
        let change = state.withLock { state -> Bool in
            guard state.checksumOff == checksum else { return false }
            state.checksumOff = !checksum
            return true
        }
        if change { _ = Sys.setOption(fd, Int32(SOL_SOCKET), Int32(SO_NO_CHECK), checksum ? 0 : 1) }
    }

    // MARK: - Path MTU

    /// The largest payload a datagram to `remoteHost` can carry without fragmentation: the
    /// path MTU (the route's MTU, or what path-MTU discovery has learnt) minus the IP and UDP
    /// headers.
    ///
    /// - Parameter remoteHost: The destination IPv4 address (host byte order), not 0.
    /// - Returns: The payload size in bytes, at most 65,507.
    /// - Throws: ``MacTCPError/ipBadAddr`` for host 0; ``MacTCPError/ipRouteErr`` when there
    ///   is no route; ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding MacTCP call is `UDPMaxMTUSize`.
    public func maxMTUSize(remoteHost: UInt32) throws -> Int {
        let operation = "maxMTUSize"
        try state.withLock { state throws(MacTCPError) in try checkNotReleased(state, operation) }
        if remoteHost == 0 {
            throw MacTCPError.ipBadAddr.with(operation: operation, detail: "the remote host must not be 0")
        }
        let mtu = Sys.pathMTU(to: remoteHost)
        guard mtu > 0 else {
            throw MacTCPError.ipRouteErr.with(operation: operation, errno: Int32(-mtu), detail: "no route to \(IPv4.string(remoteHost))")
        }
        return min(mtu - 28, Self.maximumDatagramSize)
    }

    // MARK: - Release

    /// Releases the stream: closes the socket; a blocked `read` returns with
    /// ``MacTCPError/connectionTerminated``; every later call throws
    /// ``MacTCPError/invalidStreamPtr``. Releasing twice does nothing. `deinit` releases too.
    ///
    /// The corresponding MacTCP call is `UDPRelease`.
    public func release() {
        let first = state.withLock { state -> Bool in
            guard !state.released else { return false }
            state.released = true
            return true
        }
        guard first else { return }
        if let registration = registration.withLock({ $0.take() }) {
            Reactor.shared.deregister(registration, descriptor)
        }
        // Wakes a blocked read (the kernel reports a hang-up even on an unconnected socket).
        _ = descriptor.withDescriptor { Sys.shutdownBoth($0) }
        descriptor.retire()
        delivery.finish()
    }

    private func checkNotReleased(_ state: State, _ operation: String) throws(MacTCPError) {
        if state.released {
            throw MacTCPError.invalidStreamPtr.with(operation: operation, detail: "the stream has been released")
        }
    }

    // MARK: - Errors and events

    /// Drains the error queue: each ICMP message becomes the last report and an
    /// `.icmpReceived` event. Draining also clears the socket's pending error. Returns
    /// whether anything was found.
    @discardableResult
    private func serviceErrors(_ fd: Int32) -> Bool {
        var entry = mt_errq_entry()
        var found = false
        while Sys.nextErrorQueueEntry(fd, &entry) == 1 {
            found = true
            guard Int(entry.kind) == Int(MT_ERRQ_ICMP) else { continue }
            let icmpv6 = entry.icmp6 != 0
            var report = ICMPReport(
                reportType: ICMPMessageType(icmpType: entry.icmp_type, code: entry.icmp_code, icmpv6: icmpv6),
                icmpType: entry.icmp_type,
                icmpCode: entry.icmp_code,
                reportingHost: UInt32(bigEndian: entry.offender),
                remoteHost: UInt32(bigEndian: entry.dest_addr),
                remotePort: UInt16(bigEndian: entry.dest_port),
                localPort: port,
                optionalAddlInfo: Int(entry.data),
                errno: entry.err
            )
            report.isICMPv6 = icmpv6
            report.reportingAddress = IPAddress(kernelBytes: entry.offender6)
            report.remoteAddress = IPAddress(kernelBytes: entry.dest6)
            state.withLock { state in
                state.lastICMPReport = report
                delivery.post(.icmpReceived, report.reportType?.rawValue ?? -1)
            }
        }
        return found
    }
}

extension UDPStream: ReactorHandler {
    func handle(events: UInt32) {
        _ = descriptor.withDescriptor { fd in
            if events & EpollEvents.error != 0 { serviceErrors(fd) }
            guard events & EpollEvents.input != 0 else { return }
            let ready = Sys.poll(fd, events: Sys.pollIn, timeoutMilliseconds: 0)
            guard ready > 0 && ready & Int(Sys.pollIn) != 0 else { return }
            state.withLock { state in
                guard !state.released, state.readers == 0, state.dataArrivalArmed else { return }
                state.dataArrivalArmed = false
                delivery.post(.dataArrival)
            }
        }
    }
}

/// One non-blocking `recvfrom` into a datagram's bytes.
private struct DatagramRead: ByteSource {
    let fd: Int32
    /// The datagram's length, or the negative errno.
    var length = 0
    var sender = Endpoint.none

    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
        let (length, from) = Sys.receiveDatagram(fd, buffer, flags: Sys.msgDontWait)
        self.length = length
        sender = from ?? .none
        return length
    }

    /// A datagram is one read.
    func fillMore(_ buffer: UnsafeMutableRawBufferPointer) -> Int { 0 }
}
