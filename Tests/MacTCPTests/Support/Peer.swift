// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Glibc
import MacTCP

/// A failure of a test peer (a deadline passed, or a system call failed).
struct PeerError: Error, CustomStringConvertible {
    let description: String
}

/// A plain BSD socket on loopback: the independent peer the tests talk to.
///
/// Every blocking step takes a deadline (poll before each call); nothing here uses MacTCP.
///
/// `@unchecked Sendable`: tests hand a peer to a helper thread, but only one thread uses a
/// peer at a time (the test waits for the helper before touching it again); `isOpen` is the
/// only mutable state and is changed only by `close()`.
final class Peer: @unchecked Sendable {
    let fd: Int32
    private var isOpen = true

    init(fd: Int32) {
        self.fd = fd
    }

    deinit {
        close()
    }

    /// Closes the socket (once).
    func close() {
        if isOpen {
            isOpen = false
            Glibc.close(fd)
        }
    }

    // MARK: Creating

    /// A listening socket on 127.0.0.1, or `host` (port 0: any free port).
    static func listener(port: UInt16 = 0, host: UInt32 = IPv4.loopback, backlog: Int32 = 16) throws -> Peer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        try check(withAddress(host, port) { Glibc.bind(fd, $0, $1) }, "bind")
        try check(Glibc.listen(fd, backlog), "listen")
        return Peer(fd: fd)
    }

    /// Connects to 127.0.0.1:`port`, optionally from a chosen local port and address (another
    /// loopback address such as 127.0.0.2 makes a second host on one machine).
    static func connect(port: UInt16, from localPort: UInt16 = 0, fromHost localHost: UInt32 = 0, timeout: Double = 5) throws -> Peer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        let peer = Peer(fd: fd)
        if localPort != 0 || localHost != 0 {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
            try check(withAddress(localHost, localPort) { Glibc.bind(fd, $0, $1) }, "bind")
        }
        try peer.connect(timeout: timeout) { withAddress(IPv4.loopback, port) { Glibc.connect(fd, $0, $1) } }
        return peer
    }

    /// Makes `start` (a `connect` call) non-blocking and waits for it within `timeout`.
    func connect(timeout: Double, _ start: () throws -> Int32) throws {
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags | O_NONBLOCK)
        let result = try start()
        if result < 0 && errno != EINPROGRESS { throw PeerError(description: "connect: \(String(cString: strerror(errno)))") }
        guard try poll(Int16(POLLOUT), timeout: timeout) else { throw PeerError(description: "connect timed out") }
        let error = socketError()
        _ = fcntl(fd, F_SETFL, flags)
        if error != 0 { throw ConnectFailure(errno: error) }
    }

    struct ConnectFailure: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "connect failed: \(String(cString: strerror(errno)))" }
    }

    /// Accepts one connection within the deadline.
    func accept(timeout: Double = 5) throws -> Peer {
        guard try poll(Int16(POLLIN), timeout: timeout) else { throw PeerError(description: "accept timed out") }
        let client = acceptCloseOnExec(fd)
        try Self.check(client, "accept")
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
        return Peer(fd: client)
    }

    // MARK: Addresses

    var localPort: UInt16 { endpoint(getsockname).port }
    var remotePort: UInt16 { endpoint(getpeername).port }
    var localHost: UInt32 { endpoint(getsockname).host }

    private func endpoint(
        _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) -> (host: UInt32, port: UInt16) {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
        }
        return (UInt32(bigEndian: address.sin_addr.s_addr), UInt16(bigEndian: address.sin_port))
    }

    // MARK: Data

    func send(_ bytes: [UInt8], flags: Int32 = 0, timeout: Double = 10) throws {
        var offset = 0
        while offset < bytes.count {
            guard try poll(Int16(POLLOUT), timeout: timeout) else { throw PeerError(description: "send timed out") }
            let n = bytes.withUnsafeBytes {
                Glibc.send(fd, $0.baseAddress! + offset, bytes.count - offset, flags | Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
            }
            if n < 0 && (errno == EAGAIN || errno == EINTR) { continue }
            try Self.check(Int32(n < 0 ? -1 : 0), "send")
            offset += n
        }
    }

    func send(_ text: String) throws { try send(Array(text.utf8)) }

    /// Sends the bytes as urgent data (MSG_OOB): the urgent pointer ends after the last one.
    func sendUrgent(_ bytes: [UInt8]) throws { try send(bytes, flags: Int32(MSG_OOB)) }

    /// Receives up to `max` bytes; [] at end of stream.
    func receive(max: Int = 65536, timeout: Double = 5) throws -> [UInt8] {
        guard try poll(Int16(POLLIN), timeout: timeout) else { throw PeerError(description: "receive timed out") }
        var buffer = [UInt8](repeating: 0, count: max)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, max, Int32(MSG_DONTWAIT)) }
        if n < 0 { throw ReceiveFailure(errno: errno) }
        return Array(buffer[0..<n])
    }

    struct ReceiveFailure: Error, CustomStringConvertible {
        let errno: Int32
        var description: String { "recv failed: \(String(cString: strerror(errno)))" }
    }

    /// Receives up to `max` bytes into `received`, noting in `marks` where an urgent region
    /// ends (the count of bytes up to and including its last byte). sockatmark is true when
    /// the next byte is the last urgent byte, so it is checked before and after the read.
    /// Returns false at end of stream.
    func receive(into received: inout [UInt8], marks: inout Set<Int>, max: Int = 65536, timeout: Double = 30) throws -> Bool {
        guard try poll(Int16(POLLIN), timeout: timeout) else { throw PeerError(description: "receive timed out") }
        if atMark { marks.insert(received.count + 1) }
        let chunk = try receive(max: max, timeout: timeout)
        if chunk.isEmpty { return false }
        received += chunk
        if atMark { marks.insert(received.count + 1) }
        return true
    }

    /// Receives exactly `count` bytes.
    func receive(exactly count: Int, timeout: Double = 10) throws -> [UInt8] {
        var result: [UInt8] = []
        let deadline = Clock.now + timeout
        while result.count < count {
            let chunk = try receive(max: count - result.count, timeout: max(0.001, deadline - Clock.now))
            if chunk.isEmpty { throw PeerError(description: "end of stream after \(result.count) of \(count) bytes") }
            result += chunk
        }
        return result
    }

    /// Reads until end of stream.
    func receiveToEnd(timeout: Double = 10) throws -> [UInt8] {
        var result: [UInt8] = []
        let deadline = Clock.now + timeout
        while true {
            let chunk = try receive(timeout: max(0.001, deadline - Clock.now))
            if chunk.isEmpty { return result }
            result += chunk
        }
    }

    /// Bytes waiting to be read (FIONREAD).
    var unread: Int {
        var value: Int32 = 0
        _ = ioctl(fd, UInt(FIONREAD), &value)
        return Int(value)
    }

    /// Waits until at least `count` bytes are waiting to be read.
    func waitUnread(_ count: Int, timeout: Double = 5) throws {
        try waitUntil(timeout: timeout, "\(count) unread bytes") { unread >= count }
    }

    // MARK: Options and ends

    func setOOBInline() {
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, 4)
    }

    func setReceiveBuffer(_ size: Int32) {
        var value = size
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &value, 4)
    }

    /// Acknowledges at once instead of delaying (the kernel leaves quick-ack mode again after
    /// a while, so set it around each read).
    func setQuickAck() {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), Int32(TCP_QUICKACK), &one, 4)
    }

    var atMark: Bool { sockatmark(fd) == 1 }

    func shutdownWrite() { shutdown(fd, Int32(SHUT_WR)) }

    /// Closes with a reset (SO_LINGER {1, 0}).
    func reset() {
        var option = linger(l_onoff: 1, l_linger: 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
        close()
    }

    func socketError() -> Int32 {
        var error: Int32 = 0
        var length = socklen_t(4)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
        return error
    }

    /// The kernel's TCP state of the socket (tcpi_state).
    var tcpState: UInt8 {
        var info = tcp_info()
        var length = socklen_t(MemoryLayout<tcp_info>.size)
        getsockopt(fd, Int32(IPPROTO_TCP), Int32(TCP_INFO), &info, &length)
        return info.tcpi_state
    }

    /// poll() for `events` within the deadline; true when ready.
    func poll(_ events: Int16, timeout: Double) throws -> Bool {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        let deadline = Clock.now + timeout
        while true {
            let left = Int32(max(0, (deadline - Clock.now) * 1000).rounded(.up))
            let n = Glibc.poll(&entry, 1, left)
            if n > 0 { return true }
            if n == 0 { return false }
            if errno != EINTR { throw PeerError(description: "poll: \(String(cString: strerror(errno)))") }
        }
    }

    static func check(_ result: Int32, _ what: String) throws {
        if result < 0 { throw PeerError(description: "\(what): \(String(cString: strerror(errno)))") }
    }

    private static func withAddress<R>(_ host: UInt32, _ port: UInt16, _ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = host.bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }
}

/// accept(2) with the new descriptor close-on-exec from the start (accept4, a GNU extension
/// that Glibc's module does not export), like every descriptor of the tests: a child process
/// spawned meanwhile (an exit test, a Python peer) would otherwise hold the connection open
/// after the test closes it, and the FIN would wait for that child's exit.
func acceptCloseOnExec(_ fd: Int32) -> Int32 {
    typealias Accept4 = @convention(c) (Int32, UnsafeMutablePointer<sockaddr>?, UnsafeMutablePointer<socklen_t>?, Int32) -> Int32
    let accept4 = unsafeBitCast(dlsym(UnsafeMutableRawPointer(bitPattern: 0), "accept4")!, to: Accept4.self)
    return accept4(fd, nil, nil, Int32(SOCK_CLOEXEC.rawValue))
}

/// Seconds on the monotonic clock.
enum Clock {
    static var now: Double {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }
}

/// Polls `condition` until it holds or the deadline passes.
func waitUntil(timeout: Double = 5, _ what: String, _ condition: () throws -> Bool) throws {
    let deadline = Clock.now + timeout
    while try !condition() {
        if Clock.now > deadline { throw PeerError(description: "timed out waiting for \(what)") }
        usleep(2000)
    }
}
