// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import MacTCP
import Synchronization
import Testing

@Suite("Process safety and resources", .timeLimit(.minutes(3)))
struct ReliabilityTests {
    @Test("sending to a peer that has gone never raises SIGPIPE: the call throws connectionTerminated")
    func noSIGPIPE() throws {
        let pair = try activePair()
        pair.peer.reset()
        var outcome: MacTCPError?
        for _ in 0..<50 {
            do {
                try pair.stream.send([UInt8](repeating: 1, count: 100_000))
            } catch let error as MacTCPError {
                outcome = error
                break
            }
        }
        #expect(outcome == .connectionTerminated)
    }

    @Test("a SIGALRM storm (no SA_RESTART) never surfaces EINTR as an error")
    func signalStorm() async {
        _ = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success) { () async -> Void in
                signalStormInChild()
            }
        }
    }

    @Test("under a SIGALRM storm, an urgent byte always completes the async receive waiting for it")
    func urgentUnderSignals() async {
        // A read at the urgent mark returns EAGAIN while a signal is pending, byte or not.
        // (A wrong result is recorded as an issue in the child, which Swift Testing reports
        // here; the macro returns no result when the expectation fails.)
        _ = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success) { () async -> Void in
                await urgentUnderSignalsInChild()
            }
        }
    }

    @Test("every descriptor the library opens is close-on-exec: a forked child inherits none")
    func closeOnExec() async {
        // In a process of its own: the other suites open descriptors meanwhile.
        _ = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success) { () async -> Void in
                do {
                    try closeOnExecInChild()
                } catch {
                    exit(9)
                }
            }
        }
    }

    @Test("a stream released from another thread while a receive and a send are blocked on it")
    func releaseWhileBlocked() throws {
        let listener = try Peer.listener()
        listener.setReceiveBuffer(4096)
        let stream = try TCPStream()
        try stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        let peer = try listener.accept()
        let receiving = Background { try stream.receive(timeout: 30) }
        let sending = Background { try stream.send([UInt8](repeating: 0, count: 20_000_000)) }
        usleep(200_000)
        #expect(!receiving.isFinished && !sending.isFinished)
        let releasing = Background { stream.release() }
        _ = try releasing.value().get()
        #expect(throws: MacTCPError.connectionTerminated) { try receiving.value().get() }
        #expect(throws: MacTCPError.connectionTerminated) { try sending.value().get() }
        _ = peer
    }

    @Test("10,000 streams open at once in one process: 5,000 connections, each end a MacTCP stream, every one carrying data")
    func tenThousandStreams() async {
        // In a process of its own: it raises the descriptor limit and counts descriptors.
        let result = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { () async -> Void in
                do {
                    try manyStreamsInChild(connections: 5000)
                } catch {
                    exit(9)
                }
            }
        }
        recordChildErrors(result)
    }

    @Test("opens that fail (port in use, refused) close every socket they made")
    func failedOpensLeakNothing() async {
        _ = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success) { () async -> Void in
                do {
                    try failedOpensInChild()
                } catch {
                    exit(9)
                }
            }
        }
    }

    @Test("out of descriptors when a client comes: the reactor tries the accept again, and the client is taken once one is free")
    func acceptRetriedAfterEMFILE() async {
        _ = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success) { () async -> Void in
                do {
                    try acceptRetryInChild()
                } catch {
                    exit(9)
                }
            }
        }
    }

    @Test("100,000 open/send/abort/close/release cycles leak no descriptor and no memory")
    func cycles() async {
        // In a process of its own: the descriptor count is process-wide.
        _ = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success) { () async -> Void in
                do {
                    try descriptorCyclesInChild()
                } catch {
                    exit(9)
                }
            }
        }
    }
}

/// The body of the cycles test, run in a child process: exits 7 when a descriptor leaked,
/// 8 when memory grew. Measured: 100,000 cycles in about 12 s, descriptors equal before and
/// after, RSS +0.5 MiB between cycle 10,000 and the end.
func descriptorCyclesInChild() throws {
    exitAfter(seconds: 150)
    // Long and busy: leave the processor to the other suites first (their deadlines are
    // tight, this test's are not).
    setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
    let listener = try Peer.listener(backlog: 1024)
    let port = listener.localPort
    // The peer accepts, reads the byte (so that its close is a FIN, not a reset) and closes,
    // on a thread of its own.
    let stop = Atomic<Bool>(false)
    let acceptor = Background { () throws -> Int in
        var accepted = 0
        while !stop.load(ordering: .relaxed) {
            guard (try? listener.poll(Int16(POLLIN), timeout: 0.05)) == true else { continue }
            let client = acceptCloseOnExec(listener.fd)
            if client >= 0 {
                var entry = pollfd(fd: client, events: Int16(POLLIN), revents: 0)
                var byte: UInt8 = 0
                if Glibc.poll(&entry, 1, 1000) == 1 { _ = recv(client, &byte, 1, 0) }
                Glibc.close(client)
                accepted += 1
            }
        }
        return accepted
    }
    // The reactor's epoll instance and eventfd are made on first use (a UDP stream always
    // registers with it).
    try UDPStream().release()
    // Sockets only: the runtime around the test (Swift Testing's exit-test channel, Dispatch)
    // may open descriptors of other kinds meanwhile.
    let before = openSocketCount()
    var memoryBefore = 0
    let cycles = 100_000
    for index in 0..<cycles {
        let stream = try TCPStream()
        try stream.activeOpen(host: IPv4.loopback, remotePort: port, timeout: 5)
        try stream.send([UInt8(truncatingIfNeeded: index)])
        switch index % 3 {
        case 0: try stream.abort()
        case 1: try stream.close()
        default: break
        }
        stream.release()
        if index == 10_000 { memoryBefore = residentKiB() }
    }
    // The peer's side is counted too: let it close its last connection and stop first.
    stop.store(true, ordering: .relaxed)
    _ = try acceptor.value(timeout: 30).get()
    // A descriptor retired while the reactor was looking at it is closed by the reactor a
    // moment later: a leak is a count that stays above the first one.
    var after = openSocketCount()
    for _ in 0..<50 where after != before {
        usleep(100_000)
        after = openSocketCount()
    }
    if after != before { exit(7) }
    if residentKiB() - memoryBefore > 8 * 1024 { exit(8) }
}

/// The body of the many-streams test, run in a child process: `connections` passive streams
/// wait on one port, as many active streams connect to them, a byte goes each way on every
/// connection while all are open, then all are released. Exits 3 when the descriptor limit
/// cannot be raised far enough, 4 when a byte went astray, 5 when too few sockets were open,
/// 20 + n when n descriptors of any kind were still open 5 s after the last release (each
/// written to standard error).
/// Measured: 10,000 streams (and 10,000 descriptors) open at once, set up in about 2 s.
func manyStreamsInChild(connections: Int) throws {
    exitAfter(seconds: 150)
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    if Int(limit.rlim_cur) < 2 * connections + 100 { exit(3) }
    // What the library and the runtime open once (the reactor's epoll and eventfd, the
    // delivery threads) exists before the count: a small round of the same work first.
    let warmUp = try TCPStream()
    try warmUp.passiveOpen(port: 0, timeout: 10)
    let warmClient = try TCPStream()
    try warmClient.activeOpen(host: IPv4.loopback, remotePort: warmUp.getSockName().port, timeout: 10)
    try warmUp.wait()
    warmClient.release()
    warmUp.release()
    let before = settledDescriptors()
    let socketsBefore = openSocketCount()
    let first = try TCPStream()
    try first.passiveOpen(port: 0, timeout: 60)
    let port = first.getSockName().port
    var passive = [first]
    for _ in 1..<connections {
        let stream = try TCPStream()
        try stream.passiveOpen(port: port, timeout: 60)
        passive.append(stream)
    }
    var active: [TCPStream] = []
    for _ in 0..<connections {
        let stream = try TCPStream()
        try stream.activeOpen(host: IPv4.loopback, remotePort: port, timeout: 30)
        active.append(stream)
    }
    for stream in passive { try stream.wait() }
    if openSocketCount() - socketsBefore < 2 * connections { exit(5) }
    // Streams are matched first come, first served: the i-th client reached the i-th stream.
    for (index, stream) in active.enumerated() {
        try stream.send([UInt8(truncatingIfNeeded: index)])
    }
    for (index, stream) in passive.enumerated() {
        let received = try stream.receive(timeout: 10)
        if received.data != [UInt8(truncatingIfNeeded: index)] { exit(4) }
        try stream.send(received.data)
    }
    for (index, stream) in active.enumerated() {
        if try stream.receive(timeout: 10).data != [UInt8(truncatingIfNeeded: index)] { exit(4) }
    }
    for stream in active + passive { stream.release() }
    let left = descriptorsLeft(since: before)
    if left > 0 { exit(Int32(20 + min(200, left))) }
}

/// Every descriptor this process has open: its number and what it is (`readlink` of
/// `/proc/self/fd/N`: `socket:[inode]`, `anon_inode:[eventpoll]`, a pipe, a file).
func openDescriptors() -> Set<String> {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return Set(names.map { "\($0) -> " + ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) ?? "?") })
}

/// The open descriptors once they stop changing (the same for 300 ms; at most 5 s): what a
/// warm-up left open for good, without what it is still closing.
func settledDescriptors() -> Set<String> {
    var last = openDescriptors()
    var steady = 0
    for _ in 0..<50 where steady < 3 {
        usleep(100_000)
        let now = openDescriptors()
        steady = now == last ? steady + 1 : 0
        last = now
    }
    return last
}

/// Waits up to 5 s for the descriptors opened since `before` to be closed (a descriptor
/// retired while the reactor looks at it is closed a moment later), then writes each one
/// still open to standard error, which the exit test shows, and returns how many there are.
func descriptorsLeft(since before: Set<String>) -> Int {
    var left = openDescriptors().subtracting(before)
    for _ in 0..<50 where !left.isEmpty {
        usleep(100_000)
        left = openDescriptors().subtracting(before)
    }
    for descriptor in left.sorted() { FileHandle.standardError.write(Data("left open: \(descriptor)\n".utf8)) }
    return left.count
}

/// Records what a child process wrote to standard error (the descriptors it found left
/// open), when it did not exit as expected.
func recordChildErrors(_ result: ExitTest.Result?, sourceLocation: SourceLocation = #_sourceLocation) {
    guard let result, result.exitStatus != .exitCode(EXIT_SUCCESS), !result.standardErrorContent.isEmpty else { return }
    Issue.record(
        "the child's standard error:\n\(String(decoding: result.standardErrorContent, as: UTF8.self))", sourceLocation: sourceLocation)
}

/// How many sockets this process has open.
func openSocketCount() -> Int {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    return names.filter {
        ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)) ?? "").hasPrefix("socket:")
    }.count
}

/// The body of the close-on-exec test, run in a child process: exits 7 when a descriptor the
/// library opened is not close-on-exec, 8 when too few were found to check.
func closeOnExecInChild() throws {
    exitAfter(seconds: 30)
    let before = Set((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [])
    let pair = try activePair()  // an active stream
    let server = try TCPStream()
    try server.passiveOpen()  // a listener
    let client = try TCPStream()
    try client.activeOpen(host: IPv4.loopback, remotePort: server.getSockName().port, timeout: 5)
    try server.wait()  // an accepted socket
    let udp = try UDPStream()  // a UDP socket (and the reactor)
    try pair.stream.close()
    let after = Set((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [])
    var checked = 0
    for name in after.subtracting(before) {
        let info = (try? String(contentsOfFile: "/proc/self/fdinfo/" + name, encoding: .utf8)) ?? ""
        guard let line = info.split(separator: "\n").first(where: { $0.hasPrefix("flags:") }),
            let flags = Int(line.split(separator: "\t").last ?? "", radix: 8)
        else { continue }
        if flags & 0o2000000 == 0 { exit(7) }
        checked += 1
    }
    if checked < 5 { exit(8) }
    udp.release()
    client.release()
    server.release()
}

/// The body of the signal-storm test, run in a child process (the storm is process-wide).
func signalStormInChild() {
    exitAfter(seconds: 60)
    setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in }
    action.sa_flags = 0  // no SA_RESTART: blocking system calls return EINTR
    sigemptyset(&action.sa_mask)
    sigaction(SIGALRM, &action, nil)
    var timer = itimerval(it_interval: timeval(tv_sec: 0, tv_usec: 500), it_value: timeval(tv_sec: 0, tv_usec: 500))
    setitimer(Int32(ITIMER_REAL.rawValue), &timer, nil)
    do {
        let pair = try passivePair()
        // A receive that times out: commandTimeout, after its timeout.
        let start = Clock.now
        do {
            _ = try pair.stream.receive(timeout: .milliseconds(300))
            exit(2)
        } catch MacTCPError.commandTimeout {
            if Clock.now - start < 0.29 { exit(3) }
        }
        // Data both ways, several megabytes, while the signals keep coming.
        let data = (0..<3_000_000).map { UInt8(truncatingIfNeeded: $0) }
        let peer = pair.peer
        let reader = Background { try peer.receive(exactly: data.count, timeout: 30) }
        try pair.stream.send(data, waitForAck: true)
        if try reader.value(timeout: 30).get() != data { exit(4) }
        try peer.send("back")
        if try pair.stream.receive(timeout: 5).data != Array("back".utf8) { exit(5) }
        try pair.stream.close()
        exit(0)
    } catch {
        exit(6)
    }
}

/// The body of the urgent-under-signals test, run in a child process. The waiting receives
/// run on a thread of their own that takes signals (Dispatch's threads, where tasks usually
/// run, block them; a program's main thread or its own threads do not), and that thread gets
/// a SIGALRM every 20 µs, while an async receive waits for each of 500 urgent bytes. Exits 2
/// when a receive timed out (the byte was there: its read at the mark was refused for the
/// pending signal, and the receive went back to sleep), 3 for a wrong result, 4 when no timer
/// could be made, 6 for another error.
func urgentUnderSignalsInChild() async {
    exitAfter(seconds: 60)
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in }
    action.sa_flags = 0
    sigemptyset(&action.sa_mask)
    sigaction(SIGALRM, &action, nil)
    let executor = SignalledThreadExecutor()
    do {
        let pair = try activePair()
        let stream = pair.stream
        for _ in 0..<500 {
            // The receive waits first; the byte's arrival wakes it, and its read meets a signal.
            let waiting = Task(executorPreference: executor) { try await stream.receive(timeout: .seconds(2)) }
            usleep(500)
            try pair.peer.sendUrgent([0x21])
            let received = try await waiting.value
            if received != TCPReceived(data: [0x21], urgent: true, mark: true) {
                Issue.record("wrong result: \(received)")
                exit(3)
            }
        }
        exit(0)
    } catch MacTCPError.commandTimeout {
        exit(2)
    } catch {
        exit(6)
    }
}

/// A task executor whose one thread takes SIGALRM, which a timer sends it every 20 µs.
private final class SignalledThreadExecutor: TaskExecutor, Sendable {
    private let jobs = Mutex<[UnownedJob]>([])
    private let ready = DispatchSemaphore(value: 0)

    init() {
        let thread = Thread { [self] in
            var signals = sigset_t()
            sigemptyset(&signals)
            sigaddset(&signals, SIGALRM)
            pthread_sigmask(SIG_UNBLOCK, &signals, nil)
            aimSignalsAtThisThread()
            while true {
                ready.wait()
                let job = jobs.withLock { $0.removeFirst() }
                job.runSynchronously(on: asUnownedTaskExecutor())
            }
        }
        thread.start()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        jobs.withLock { $0.append(job) }
        ready.signal()
    }
}

/// Aims a SIGALRM every 20 µs at the calling thread.
private func aimSignalsAtThisThread() {
    var event = sigevent()
    event.sigev_notify = Int32(SIGEV_THREAD_ID)
    event.sigev_signo = SIGALRM
    event._sigev_un._tid = currentThreadID()
    var timer: timer_t?
    guard timer_create(CLOCK_MONOTONIC, &event, &timer) == 0 else { exit(4) }
    var period = itimerspec(it_interval: timespec(tv_sec: 0, tv_nsec: 20_000), it_value: timespec(tv_sec: 0, tv_nsec: 20_000))
    timer_settime(timer, 0, &period, nil)
}

/// The calling thread's kernel id (`/proc/thread-self` links to `PID/task/TID`).
func currentThreadID() -> pid_t {
    var buffer = [CChar](repeating: 0, count: 64)
    let length = readlink("/proc/thread-self", &buffer, buffer.count - 1)
    guard length > 0 else { return 0 }
    let link = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return pid_t(link.split(separator: "/").last ?? "") ?? 0
}

/// This process's resident memory in KiB.
func residentKiB() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
    return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") ?? 0
}

/// The body of the failed-opens test, in a child process: exits 7 when the sockets open
/// after 300 failed passive opens, 300 failed active opens from a port in use and 300 refused
/// connects are not those open before.
func failedOpensInChild() throws {
    exitAfter(seconds: 60)
    let holder = try Peer.listener()
    let taken = holder.localPort
    try UDPStream().release()  // the reactor's own descriptors exist before the count
    let before = openSocketCount()
    let stream = try TCPStream()
    for _ in 0..<300 {
        expectMacTCPError(.duplicateSocket) { try stream.passiveOpen(port: taken) }
        expectMacTCPError(.duplicateSocket) {
            try stream.activeOpen(localPort: taken, host: IPv4.loopback, remotePort: taken, timeout: 5)
        }
        expectMacTCPError(.openFailed) { try stream.activeOpen(host: IPv4.loopback, remotePort: 1, timeout: 5) }
    }
    stream.release()
    var after = openSocketCount()
    for _ in 0..<50 where after != before {
        usleep(100_000)
        after = openSocketCount()
    }
    if after != before { exit(7) }
}

/// The body of the accept-retry test, in a child process: exits 3 when the descriptors
/// cannot be used up, 7 when the client was not taken within 5 s of a descriptor coming free.
func acceptRetryInChild() throws {
    exitAfter(seconds: 60)
    let arrived = DispatchSemaphore(value: 0)
    let stream = try TCPStream()
    stream.asr = { event, _ in if event == .passiveOpenDone { arrived.signal() } }  // the reactor accepts
    try stream.passiveOpen(port: 0, timeout: 30)
    let port = stream.getSockName().port
    // The client's socket first; then every descriptor left is used up.
    let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue), 0)
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = min(limit.rlim_cur, 4096)
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    var spare: [Int32] = []
    while true {
        let fd = dup(0)
        if fd < 0 { break }
        spare.append(fd)
    }
    if spare.count < 10 || errno != EMFILE { exit(3) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = port.bigEndian
    address.sin_addr.s_addr = IPv4.loopback.bigEndian
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    // The handshake completes in the kernel; the reactor's accept fails with EMFILE.
    usleep(500_000)
    for fd in spare.suffix(5) { close(fd) }
    if arrived.wait(timeout: .now() + 5) != .success { exit(7) }
    close(client)
    stream.release()
}
