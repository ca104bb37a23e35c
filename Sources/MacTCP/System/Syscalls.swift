// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The system layer: every call into the kernel (`Sys`), the socket options, and descriptors
// that close only when no thread uses them. Only this folder and the C shim (`CMacTCP`) call
// the kernel; everything above calls it.

import CMacTCP

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// The library's only door to the kernel's socket calls (with the C shim in `CMacTCP`).
///
/// Every function returns its result, or `-errno` on failure, the convention of the C shim:
/// `EAGAIN` and `EINPROGRESS` are values a caller looks at, not exceptions. `EINTR` is retried
/// here, except for `close`, which is never retried (the descriptor is gone either way).
enum Sys {
    @inline(__always)
    private static func retrying(_ call: () -> Int) -> Int {
        while true {
            let result = call()
            if result >= 0 { return result }
            let error = Int(Glibc.errno)
            if error != Int(EINTR) { return -error }
        }
    }

    @inline(__always)
    private static func shimRetrying<R: FixedWidthInteger & SignedInteger>(_ call: () -> R) -> R {
        while true {
            let result = call()
            if result != -R(EINTR) { return result }
        }
    }

    /// A non-blocking, close-on-exec IPv4 TCP socket.
    static func tcpSocket() -> Int32 {
        socket(SOCK_STREAM, ipv6: false)
    }

    /// A non-blocking, close-on-exec IPv4 UDP socket.
    static func udpSocket() -> Int32 {
        socket(SOCK_DGRAM, ipv6: false)
    }

    /// A non-blocking, close-on-exec socket of `type` (`SOCK_DGRAM`, `SOCK_STREAM`), IPv6
    /// (`AF_INET6`) or IPv4.
    static func socket(_ type: __socket_type, ipv6: Bool) -> Int32 {
        let family = ipv6 ? AF_INET6 : AF_INET
        return Int32(retrying { Int(Glibc.socket(family, Int32(type.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)) })
    }

    /// A non-blocking, close-on-exec socket of `type` for `address`'s family.
    static func socket(_ type: __socket_type, for address: Endpoint) -> Int32 {
        socket(type, ipv6: address.address.isIPv6)
    }

    /// Runs `body` with `endpoint` as a `sockaddr_in` or `sockaddr_in6`.
    private static func withSockaddr<R>(_ endpoint: Endpoint, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch endpoint.address {
        case .v4(let host):
            var raw = sockaddr_in()
            raw.sin_family = sa_family_t(AF_INET)
            raw.sin_port = endpoint.port.bigEndian
            raw.sin_addr.s_addr = host.bigEndian
            return withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(let v6):
            var raw = sockaddr_in6()
            raw.sin6_family = sa_family_t(AF_INET6)
            raw.sin6_port = endpoint.port.bigEndian
            raw.sin6_scope_id = v6.scopeID
            withUnsafeMutableBytes(of: &raw.sin6_addr) { $0.copyBytes(from: v6.bytes) }
            return withUnsafePointer(to: &raw) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    /// The address in a `sockaddr_storage` filled by the kernel (IPv4-mapped IPv6 as IPv4).
    private static func endpoint(_ storage: sockaddr_storage) -> Endpoint? {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            let v4 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            return Endpoint(host: UInt32(bigEndian: v4.sin_addr.s_addr), port: UInt16(bigEndian: v4.sin_port))
        case AF_INET6:
            let v6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            let port = UInt16(bigEndian: v6.sin6_port)
            let words = withUnsafeBytes(of: v6.sin6_addr) { ($0.load(as: UInt64.self), $0.load(fromByteOffset: 8, as: UInt32.self)) }
            if words.0 == 0 && words.1 == UInt32(0xFFFF).bigEndian {
                // IPv4-mapped (a dual-stack socket's IPv4 peer): the IPv4 address, no array.
                let host = withUnsafeBytes(of: v6.sin6_addr) { UInt32(bigEndian: $0.load(fromByteOffset: 12, as: UInt32.self)) }
                return Endpoint(host: host, port: port)
            }
            let bytes = withUnsafeBytes(of: v6.sin6_addr) { Array($0) }
            return Endpoint(.v6(IPv6Address(unchecked: bytes, scopeID: v6.sin6_scope_id)), port: port)
        default:
            return nil
        }
    }

    /// Calls `call` (`accept4`, `getsockname`, `getpeername`, `recvfrom`) with room for an
    /// address of either family; returns its result and the address it wrote.
    private static func withAddressRoom(
        _ call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int
    ) -> (Int, Endpoint?) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { call($0, &length) }
        }
        return (result, result < 0 ? nil : endpoint(storage))
    }

    /// recvfrom() one datagram from a socket of either family: its length (0 is a valid,
    /// empty datagram) and sender.
    static func receiveDatagram(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, flags: Int32) -> (Int, Endpoint?) {
        withAddressRoom { raw, length in retrying { recvfrom(fd, buffer.baseAddress, buffer.count, flags, raw, length) } }
    }

    /// The local address of a socket of either family.
    static func localEndpoint(_ fd: Int32) -> Endpoint? {
        let (result, endpoint) = withAddressRoom { raw, length in Int(getsockname(fd, raw, length)) }
        return result < 0 ? nil : endpoint
    }

    /// The source address the kernel would use towards `destination` (a UDP socket connected
    /// there: no packet is sent), or nil when there is no route.
    static func sourceAddress(to destination: IPAddress) -> IPAddress? {
        let target = Endpoint(destination, port: 9)
        let fd = socket(SOCK_DGRAM, for: target)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard connect(fd, target) == 0 else { return nil }
        return localEndpoint(fd)?.address
    }

    /// The index of the interface named `name`, or nil.
    static func interfaceIndex(_ name: String) -> UInt32? {
        let index = if_nametoindex(name)
        return index == 0 ? nil : index
    }

    /// The name of the interface with index `index`, or nil.
    static func interfaceName(_ index: UInt32) -> String? {
        var buffer = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(index, &buffer) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// sendto() one datagram.
    static func send(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, to endpoint: Endpoint, flags: Int32) -> Int {
        withSockaddr(endpoint) { address, length in
            retrying { Glibc.sendto(fd, buffer.baseAddress, buffer.count, flags, address, length) }
        }
    }

    /// The path MTU towards `host` (IP_MTU on a socket connected there; no packet is sent).
    static func pathMTU(to host: UInt32) -> Int {
        let fd = udpSocket()
        guard fd >= 0 else { return Int(fd) }
        defer { close(fd) }
        let connected = connect(fd, Endpoint(host: host, port: 9))
        if connected < 0 { return connected }
        return intOption(fd, Int32(IPPROTO_IP), Int32(IP_MTU))
    }

    /// A non-blocking, close-on-exec ICMP (or ICMPv6) socket: an ICMP datagram socket, or a
    /// raw one with `raw`; -errno when it cannot be made.
    static func icmpSocket(ipv6: Bool, raw: Bool) -> Int32 {
        let type = (raw ? SOCK_RAW : SOCK_DGRAM).rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue
        return Int32(retrying { Int(Glibc.socket(ipv6 ? AF_INET6 : AF_INET, Int32(type), Int32(ipv6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP))) })
    }

    /// Lets a raw ICMP socket receive echo replies only (`ICMP_FILTER`, `ICMP6_FILTER`: a
    /// set bit blocks a type); errors still reach its error queue.
    static func passOnlyEchoReplies(_ fd: Int32, ipv6: Bool) {
        if ipv6 {
            var filter = [UInt32](repeating: 0xFFFF_FFFF, count: 8)
            filter[129 >> 5] &= ~(UInt32(1) << (129 & 31))
            _ = filter.withUnsafeBytes { setsockopt(fd, Int32(IPPROTO_ICMPV6), 1, $0.baseAddress, socklen_t($0.count)) }
        } else {
            var filter = ~UInt32(1)  // everything but type 0, the echo reply
            _ = setsockopt(fd, 255, 1, &filter, socklen_t(MemoryLayout<UInt32>.size))  // SOL_RAW, ICMP_FILTER
        }
    }

    /// Whether `fd` is an IPv6 socket (`SO_DOMAIN`).
    static func isIPv6Socket(_ fd: Int32) -> Bool {
        intOption(fd, Int32(SOL_SOCKET), Int32(SO_DOMAIN)) == Int(AF_INET6)
    }

    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) -> Int {
        var value = value
        return retrying {
            Int(setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)))
        }
    }

    static func intOption(_ fd: Int32, _ level: Int32, _ name: Int32) -> Int {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        let result = retrying { Int(getsockopt(fd, level, name, &value, &length)) }
        return result < 0 ? result : Int(value)
    }

    /// SO_LINGER {1, 0}: the next close resets the connection.
    static func setResetOnClose(_ fd: Int32) -> Int {
        var option = linger(l_onoff: 1, l_linger: 0)
        return retrying { Int(setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))) }
    }

    static func bind(_ fd: Int32, _ endpoint: Endpoint) -> Int {
        withSockaddr(endpoint) { address, length in retrying { Int(Glibc.bind(fd, address, length)) } }
    }

    static func listen(_ fd: Int32, backlog: Int32) -> Int {
        retrying { Int(Glibc.listen(fd, backlog)) }
    }

    /// Starts a non-blocking connect; `-EINPROGRESS` means it is under way.
    static func connect(_ fd: Int32, _ endpoint: Endpoint) -> Int {
        withSockaddr(endpoint) { address, length in
            let result = Glibc.connect(fd, address, length)
            return result < 0 ? -Int(Glibc.errno) : Int(result)
        }
    }

    /// accept4 with SOCK_NONBLOCK | SOCK_CLOEXEC; returns the descriptor and the peer (an
    /// IPv4-mapped peer of a dual-stack listener as IPv4), or the errno.
    static func accept(_ fd: Int32) -> Result<(fd: Int32, peer: Endpoint), AcceptFailure> {
        let (result, peer) = withAddressRoom { raw, length in
            Int(shimRetrying { mt_accept(fd, raw, length) })
        }
        guard result >= 0 else { return .failure(AcceptFailure(errno: Int32(-result))) }  // the shim returns -errno
        return .success((Int32(result), peer ?? .none))
    }

    struct AcceptFailure: Error {
        let errno: Int32
    }

    /// send() on a stream socket (not a cancellation point: see the C shim).
    static func send(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, flags: Int32) -> Int {
        shimRetrying { mt_send(fd, buffer.baseAddress, buffer.count, flags) }
    }

    static func sendReportingAck(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, flags: Int32) -> Int {
        shimRetrying { mt_send_reporting_ack(fd, buffer.baseAddress, buffer.count, flags) }
    }

    /// recv() on a stream socket (not a cancellation point: see the C shim).
    static func receive(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, flags: Int32) -> Int {
        shimRetrying { mt_recv(fd, buffer.baseAddress, buffer.count, flags) }
    }

    /// poll() on one descriptor; returns the returned events, 0 on timeout, or -errno.
    /// `timeoutMilliseconds` -1 waits without limit. EINTR returns 0 so that the caller
    /// recomputes its deadline and polls again.
    static func poll(_ fd: Int32, events: Int16, timeoutMilliseconds: Int32) -> Int {
        let result = mt_poll1(fd, events, timeoutMilliseconds)
        return result == -EINTR ? 0 : Int(result)
    }

    /// poll() on several descriptors (-1: none, skipped) for `events`: each one's events, all
    /// 0 when the time passed or a signal came (the caller looks again).
    static func poll(_ fds: [Int32], events: Int16, timeoutMilliseconds: Int32) -> [Int16] {
        if fds.count == 1 {
            // One descriptor (an open to one address): the shim's poll, no array of pollfd.
            let result = poll(fds[0], events: events, timeoutMilliseconds: timeoutMilliseconds)
            return [Int16(truncatingIfNeeded: max(0, result))]
        }
        var entries = fds.map { pollfd(fd: $0, events: events, revents: 0) }
        let result = Glibc.poll(&entries, nfds_t(entries.count), timeoutMilliseconds)
        return result <= 0 ? [Int16](repeating: 0, count: fds.count) : entries.map(\.revents)
    }

    /// poll() on two descriptors without a time limit (the second one only wakes the caller);
    /// returns the first one's events, 0 for none, or -errno. EINTR returns 0: the caller
    /// looks again.
    static func poll(_ fd: Int32, events: Int16, orWakeOn waker: Int32) -> Int {
        let result = mt_poll2(fd, events, waker)
        return result == -EINTR ? 0 : Int(result)
    }

    /// A new non-blocking, close-on-exec eventfd, or -errno.
    /// What `epollControl` does to a registration (`epoll_ctl`'s operations).
    enum EpollOperation: Int32 {
        case add = 1
        case delete = 2
        case modify = 3
    }

    /// A new epoll instance, close-on-exec; `-errno` on failure.
    static func epollCreate() -> Int32 { mt_epoll_create() }

    /// Adds, changes or removes `fd`'s registration in `epoll`, tagged with `tag`.
    static func epollControl(_ epoll: Int32, _ operation: EpollOperation, _ fd: Int32, events: UInt32 = 0, tag: UInt64 = 0) -> Int32 {
        mt_epoll_ctl(epoll, operation.rawValue, fd, events, tag)
    }

    /// Waits up to `milliseconds` (-1: without limit) for registrations to report, writing
    /// each one's events and tag; returns how many (0 at the timeout), or `-errno`.
    static func epollWait(
        _ epoll: Int32, events: UnsafeMutablePointer<UInt32>, tags: UnsafeMutablePointer<UInt64>, capacity: Int32, milliseconds: Int32
    ) -> Int32 {
        mt_epoll_wait(epoll, events, tags, capacity, milliseconds)
    }

    static func eventFD() -> Int32 { mt_eventfd() }
    /// Adds 1 to an eventfd: a thread polling it wakes.
    static func signalEvent(_ fd: Int32) { _ = mt_eventfd_signal(fd) }
    /// Resets an eventfd to zero (it is non-blocking: nothing to reset returns at once).
    static func resetEvent(_ fd: Int32) { _ = mt_eventfd_drain(fd) }

    /// shutdown(SHUT_RDWR): wakes threads polling the socket (also an unconnected UDP one).
    static func shutdownBoth(_ fd: Int32) -> Int {
        retrying { Int(shutdown(fd, Int32(SHUT_RDWR))) }
    }

    static func shutdownWrite(_ fd: Int32) -> Int {
        retrying { Int(shutdown(fd, Int32(SHUT_WR))) }
    }

    /// The file at `path`, or the errno why not (`EFBIG`: more than `limit` bytes).
    static func readFile(_ path: String, limit: Int) -> Result<[UInt8], FileFailure> {
        let fd = Int32(retrying { Int(open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) })
        guard fd >= 0 else { return .failure(FileFailure(errno: -fd)) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16_384)
        while true {
            let count = buffer.withUnsafeMutableBytes { room in retrying { Glibc.read(fd, room.baseAddress, room.count) } }
            if count < 0 { return .failure(FileFailure(errno: Int32(-count))) }
            if count == 0 { return .success(bytes) }
            bytes += buffer[0..<count]
            if bytes.count > limit { return .failure(FileFailure(errno: EFBIG)) }
        }
    }

    /// Why a file could not be read: its errno.
    struct FileFailure: Error {
        let errno: Int32
    }

    /// The value of the environment variable `name`, if set.
    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// The modification time of `path` in nanoseconds, with its inode and size (a file
    /// replaced within one clock tick still changes), or nil when it cannot be read.
    static func fileVersion(_ path: String) -> [Int64]? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return [Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec), Int64(info.st_ino), Int64(info.st_size)]
    }

    /// close(); never retried on EINTR (Linux has released the descriptor already).
    static func close(_ fd: Int32) {
        _ = Glibc.close(fd)
    }

    static func tcpInfo(_ fd: Int32, _ info: inout mt_tcp_info) -> Int32 {
        shimRetrying { mt_tcp_info(fd, &info) }
    }

    /// The length of `tcp_info` a kernel must fill for `tcpi_snd_wnd` to be there (5.4+).
    static let tcpInfoSendWindowEnd = Int(mt_tcp_info_snd_wnd_end())
    /// The length of `tcp_info` a kernel must fill for `tcpi_rcv_wnd` to be there (6.2+).
    static let tcpInfoReceiveWindowEnd = Int(mt_tcp_info_rcv_wnd_end())

    /// Names the calling thread (at most 15 bytes are kept), for `ps` and debuggers.
    static func setThreadName(_ name: String) { _ = mt_set_thread_name(name) }

    /// The kernel TCP state of a socket (`tcpi_state`), or nil if it cannot be read.
    static func tcpState(_ fd: Int32) -> UInt8? {
        var info = mt_tcp_info()
        return tcpInfo(fd, &info) > 0 ? info.tcpi_state : nil
    }

    static func inputQueue(_ fd: Int32) -> Int32 { shimRetrying { mt_inq(fd) } }
    static func outputQueue(_ fd: Int32) -> Int32 { shimRetrying { mt_outq(fd) } }
    static func outputQueueNotSent(_ fd: Int32) -> Int32 { shimRetrying { mt_outq_notsent(fd) } }
    static func atMark(_ fd: Int32) -> Int32 { shimRetrying { mt_at_mark(fd) } }
    static func disconnect(_ fd: Int32) -> Int32 { shimRetrying { mt_disconnect(fd) } }
    static func enableAckReports(_ fd: Int32) -> Int32 { shimRetrying { mt_enable_ack_reports(fd) } }

    /// Takes the socket's pending error. Only `ErrorService` calls this: `SO_ERROR` is
    /// consumed by reading it, so the library reads it in exactly one place.
    static func takeSocketError(_ fd: Int32) -> Int32 { shimRetrying { mt_take_socket_error(fd) } }

    static func nextErrorQueueEntry(_ fd: Int32, _ entry: inout mt_errq_entry) -> Int32 {
        shimRetrying { mt_errqueue_next(fd, &entry) }
    }

    static let pollIn = Int16(POLLIN)
    static let pollPri = Int16(POLLPRI)
    static let pollOut = Int16(POLLOUT)
    static let pollErr = Int(POLLERR)
    static let pollHup = Int(POLLHUP)
    static let pollRdHup = Int16(0x2000)

    static let msgMore = Int32(MSG_MORE)
    static let msgOOB = Int32(MSG_OOB)
    static let msgNoSignal = Int32(MSG_NOSIGNAL)
    static let msgDontWait = Int32(MSG_DONTWAIT)
}

/// The failures of system calls the library looks at, as the layer returns them: `-errno`.
/// (Not swift-system's `Errno`: these are negated `Int` results.)
enum SyscallErrors {
    static let again = -Int(EAGAIN)
    static let inProgress = -Int(EINPROGRESS)
    static let interrupted = -Int(EINTR)
    static let addressInUse = -Int(EADDRINUSE)

    /// Resource exhaustion (descriptors, memory, buffers).
    static func isResourceShortage(_ error: Int32) -> Bool {
        error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM
    }

    /// The errnos the kernel uses to report ICMP errors on a TCP socket
    /// (its ICMP-to-errno table). On a live connection they are reports, not failures.
    static func isICMPReport(_ error: Int32) -> Bool {
        switch error {
        case EHOSTUNREACH, ENETUNREACH, ECONNREFUSED, ENOPROTOOPT, EPROTO, EHOSTDOWN, ENONET, EMSGSIZE, EOPNOTSUPP:
            return true
        default:
            return false
        }
    }
}
