// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import MacTCP
import Synchronization
import Testing

@Suite("ASR threads", .timeLimit(.minutes(1)))
struct ASRThreadTests {
    @Test("a burst of events on 300 streams runs on a few threads, not one per stream")
    func burstOnFewThreads() async {
        // In a process of its own: it counts the process's threads.
        _ = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success) { () async -> Void in
                do {
                    try burstInChild(streams: 300)
                } catch {
                    exit(9)
                }
            }
        }
    }

    @Test("the first events start ASR threads at once: no stall monitor is needed while they keep up")
    func workersStartAtOnce() async {
        // In a process of its own: it reads the process's thread names.
        _ = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success) { () async -> Void in
                do {
                    try workersInChild()
                } catch {
                    exit(9)
                }
            }
        }
    }

    @Test("ASRs blocked on one another's events all finish: blocked ASRs do not stop the other streams' events")
    func blockedASRsDoNotStopOthers() throws {
        // Eight ASRs block until a ninth stream's ASR opens the gate. The ninth event can only
        // run on a thread started while the eight are blocked.
        let blocked = 8
        // (Atomics, not Mutex: ThreadSanitizer sees the one and not the other, and these are
        // touched by several event threads at once.)
        let gate = Atomic(false)
        let entered = Atomic(0)
        let finished = Atomic(0)
        var pairs: [Pair] = []
        for _ in 0..<blocked {
            let pair = try activePair()
            pair.stream.asr = { event, _ in
                guard event == .dataArrival else { return }
                entered.add(1, ordering: .relaxed)
                let deadline = Clock.now + 20
                while !gate.load(ordering: .acquiring) && Clock.now < deadline { usleep(1000) }
                if gate.load(ordering: .acquiring) { finished.add(1, ordering: .relaxed) }
            }
            pairs.append(pair)
        }
        let opener = try activePair()
        opener.stream.asr = { event, _ in
            if event == .dataArrival { gate.store(true, ordering: .releasing) }
        }
        for pair in pairs { try pair.peer.send("x") }
        try waitUntil(timeout: 10, "all eight ASRs blocked at once") { entered.load(ordering: .relaxed) == blocked }
        try opener.peer.send("y")
        try waitUntil(timeout: 10, "the ninth stream's event and the eight ASRs' return") { finished.load(ordering: .relaxed) == blocked }
        for pair in pairs { pair.stream.release() }
        opener.stream.release()
    }

    @Test("ASR threads block the application's signals")
    func signalsBlocked() throws {
        let log = EventLog()
        let pair = try activePair(events: log)
        let masked = Atomic(0)  // 1: the signals are blocked, 2: they are not
        pair.stream.asr = { event, _ in
            guard event == .dataArrival else { return }
            var current = sigset_t()
            pthread_sigmask(SIG_BLOCK, nil, &current)
            let blocksAll = [SIGINT, SIGTERM, SIGALRM, SIGUSR1, SIGCHLD].allSatisfy { sigismember(&current, $0) == 1 }
            masked.store(blocksAll && sigismember(&current, SIGSEGV) == 0 ? 1 : 2, ordering: .relaxed)
        }
        try pair.peer.send("x")
        try waitUntil("the ASR") { masked.load(ordering: .relaxed) != 0 }
        #expect(masked.load(ordering: .relaxed) == 1)
        pair.stream.release()
    }
}

/// The body of the burst test, run in a child process: 300 streams wait on one port with an
/// ASR that takes a millisecond, 300 plain clients connect at once. Exits 3 (recording how many
/// threads) when the process gained more than 16 threads meanwhile, 4 when an event is missing.
func burstInChild(streams count: Int) throws {
    exitAfter(seconds: 50)
    func threadCount() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []).count
    }
    let delivered = Atomic(0)
    var streams: [TCPStream] = []
    var port: UInt16 = 0
    for _ in 0..<count {
        let stream = try TCPStream()
        stream.asr = { event, _ in
            guard event == .passiveOpenDone else { return }
            usleep(1000)
            delivered.add(1, ordering: .relaxed)
        }
        try stream.passiveOpen(port: port, timeout: 40)
        port = stream.getSockName().port
        streams.append(stream)
    }
    let before = threadCount()
    var peers: [Peer] = []
    for _ in 0..<count { peers.append(try Peer.connect(port: port)) }
    var most = before
    let deadline = Clock.now + 30
    while delivered.load(ordering: .relaxed) < count && Clock.now < deadline {
        most = max(most, threadCount())
        usleep(1000)
    }
    most = max(most, threadCount())
    if delivered.load(ordering: .relaxed) < count { exit(4) }
    if most - before > 16 {
        Issue.record("threads: \(before) before the burst, \(most) at most")
        exit(3)
    }
    for stream in streams { stream.release() }
    _ = peers
}

/// The body of the worker test, in a child process: exits 3 when the events did not arrive,
/// 4 when no ASR thread ran them, 5 when the stall monitor had to start (it starts threads
/// only when the running ones fall behind for 5 ms).
func workersInChild() throws {
    exitAfter(seconds: 30)
    func threadNames() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? []).compactMap {
            try? String(contentsOfFile: "/proc/self/task/\($0)/comm", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }
    let arrived = DispatchSemaphore(value: 0)
    let streams = try (0..<2).map { _ in try UDPStream() }
    for stream in streams { stream.asr = { _, _ in arrived.signal() } }
    let peer = try UDPPeer()
    for stream in streams { try peer.send([1], to: stream.port) }
    for _ in streams where arrived.wait(timeout: .now() + 10) != .success { exit(3) }
    let names = threadNames()
    if !names.contains("MacTCP ASR") { exit(4) }
    if names.contains("MacTCP ASR mon") {
        Issue.record("threads: \(names)")
        exit(5)
    }
    for stream in streams { stream.release() }
}
