// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import MacTCP
import Synchronization
import Testing

/// Another local user, as the attacker: runs a Python script as `nobody` (no privilege, no
/// group) through `setpriv`, with the system's Python (one in root's home is out of its reach).
enum OtherUser {
    static var isAvailable: Bool {
        getuid() == 0 && getpwnam("nobody") != nil && FileManager.default.isExecutableFile(atPath: "/usr/bin/python3")
            && ["/usr/bin/setpriv", "/bin/setpriv"].contains { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts `script` as `nobody`; its standard output is what it reports.
    static func run(_ script: String) throws -> ChildProcess {
        try ChildProcess("setpriv", ["--reuid", "nobody", "--regid", "nogroup", "--clear-groups", "/usr/bin/python3", "-c", script])
    }

    /// A script that tries, for `seconds`, to bind `port` (with SO_REUSEADDR, and with
    /// SO_REUSEPORT as well) and listen on it; prints TAKEN or REFUSED and the attempts.
    static func portTakeover(_ port: UInt16, seconds: Double) -> String {
        """
        import socket, time
        end = time.monotonic() + \(seconds)
        attempts = 0
        while time.monotonic() < end:
            for reuseport in (0, 1):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if reuseport: s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                attempts += 1
                try:
                    s.bind(('0.0.0.0', \(port))); s.listen(16)
                    print('TAKEN', attempts, flush=True); time.sleep(1); raise SystemExit(0)
                except OSError:
                    s.close()
        print('REFUSED', attempts, flush=True)
        """
    }
}

@Suite(
    "Hostile neighbours and peers", .serialized, .timeLimit(.minutes(2)),
    .enabled(if: OtherUser.isAvailable, "needs root, the user nobody and setpriv"))
struct HostileTests {
    @Test("another user cannot take a port whose streams are all busy: the port stays bound, clients are refused, then served again")
    func portStaysTheServers() throws {
        let streams = try (0..<2).map { _ in try TCPStream() }
        try streams[0].passiveOpen(port: 0)
        let port = streams[0].getSockName().port
        try streams[1].passiveOpen(port: port)
        // Two idle clients hold both streams: nothing listens on the port now.
        let clients = try (0..<2).map { _ in try Peer.connect(port: port) }
        for stream in streams { try stream.wait() }
        let attacker = try OtherUser.run(OtherUser.portTakeover(port, seconds: 1.5))
        usleep(200_000)
        // MacTCP's rule still holds: while no stream waits, a client is refused.
        #expect(throws: Peer.ConnectFailure.self) { _ = try Peer.connect(port: port) }
        let outcome = try attacker.finish(timeout: 20)
        print("another user's attempts on a held port: \(outcome.out.trimmingCharacters(in: .whitespacesAndNewlines))")
        #expect(outcome.out.hasPrefix("REFUSED"), "the other user's script: \(outcome.out) \(outcome.err)")
        // One connection ends; its stream passive-opens again on the port and takes a client.
        clients[0].shutdownWrite()
        expectMacTCPError(.connectionClosing) { _ = try streams[0].receive(timeout: 5) }
        try streams[0].close()
        try streams[0].passiveOpen(port: port, timeout: 10)
        let next = try Peer.connect(port: port)
        try streams[0].wait()
        try next.send("next")
        #expect(try streams[0].receive(timeout: 5).data == Array("next".utf8))
        // One stream released, the other still holds the port.
        streams[1].release()
        let again = try OtherUser.run(OtherUser.portTakeover(port, seconds: 1))
        #expect(try again.finish(timeout: 20).out.hasPrefix("REFUSED"))
        // Both released, the port is free for anyone.
        streams[0].release()
        let anyone = try OtherUser.run(OtherUser.portTakeover(port, seconds: 2))
        #expect(try anyone.finish(timeout: 20).out.hasPrefix("TAKEN"))
    }

    @Test("with no connection at all (both passive opens timed out), the port stays held until the last of its streams is released")
    func heldWithoutConnections() throws {
        let first = try TCPStream()
        let second = try TCPStream()
        try first.passiveOpen(port: 0, timeout: .milliseconds(100))
        let port = first.getSockName().port
        try second.passiveOpen(port: port, timeout: .milliseconds(100))
        expectMacTCPError(.commandTimeout) { try first.wait() }
        expectMacTCPError(.commandTimeout) { try second.wait() }
        #expect(throws: Peer.ConnectFailure.self) { _ = try Peer.connect(port: port) }
        let attempt = try OtherUser.run(OtherUser.portTakeover(port, seconds: 0.5))
        #expect(try attempt.finish(timeout: 20).out.hasPrefix("REFUSED"))
        first.release()
        let again = try OtherUser.run(OtherUser.portTakeover(port, seconds: 0.5))
        #expect(try again.finish(timeout: 20).out.hasPrefix("REFUSED"), "the second stream still holds the port")
        second.release()
        let free = try OtherUser.run(OtherUser.portTakeover(port, seconds: 2))
        #expect(try free.finish(timeout: 20).out.hasPrefix("TAKEN"))
    }

    @Test("a parked port is listened on again while its earlier connections are in TIME-WAIT, and after its last release")
    func timeWaitDoesNotBlock() throws {
        let stream = try TCPStream()
        var port: UInt16 = 0
        for round in 0..<3 {
            try stream.passiveOpen(port: port, timeout: 10)
            port = stream.getSockName().port
            let client = try Peer.connect(port: port)
            try stream.wait()
            // Our side closes first: its end of the connection stays in TIME-WAIT.
            try stream.close()
            #expect(try client.receiveToEnd() == [], "round \(round)")
            client.close()
        }
        stream.release()
        let again = try TCPStream()
        try again.passiveOpen(port: port, timeout: 10)
        let client = try Peer.connect(port: port)
        try again.wait()
        #expect(try again.status().remotePort == client.localPort)
    }

    @Test("mactcp listen --pool 2 with both streams busy: another user's script never gets the port, and the server goes on serving")
    func toolKeepsItsPort() throws {
        let port = try Tool.freePort()
        let server = try Tool.start(["listen", "--port", String(port), "--pool", "2"])
        try waitUntil(timeout: 10, "the server") { server.errors.contains("listening on port") }
        let idle = try (0..<2).map { _ in try Peer.connect(port: port) }
        try waitUntil(timeout: 10, "both streams connected") { server.errors.components(separatedBy: "connected from").count == 3 }
        let attacker = try OtherUser.run(OtherUser.portTakeover(port, seconds: 2))
        let outcome = try attacker.finish(timeout: 20)
        #expect(outcome.out.hasPrefix("REFUSED"), "the other user's script: \(outcome.out) \(outcome.err)")
        for client in idle { client.close() }
        try waitUntil(timeout: 10, "a stream waiting again") {
            (try? Peer.connect(port: port)).map { client in
                defer { client.close() }
                return (try? client.send("hello")) != nil
            } ?? false
        }
        server.send(SIGTERM)
        let result = try server.finish()
        #expect(!result.err.contains("duplicateSocket"), "stderr: \(result.err)")
    }

    /// A scratch directory anyone may write in (as /tmp), for the watch board's base.
    private func sharedScratch(_ name: String) throws -> String {
        let path = NSTemporaryDirectory() + "/mactcp-\(name)-\(getpid())"
        _ = try? shell("rm -rf '\(path)'")
        try shell("mkdir -p '\(path)' && chmod 1777 '\(path)'")
        return path
    }

    /// The tool with the watch board under `base` (no session runtime directory).
    private func tool(_ arguments: [String], base: String) throws -> ChildProcess {
        try ChildProcess("env", ["-u", "XDG_RUNTIME_DIR", "TMPDIR=\(base)", Tool.path] + arguments)
    }

    @Test("a watch board directory another user made first is refused: nothing is written through its links, watch shows nothing from it")
    func watchBoardPlanted() throws {
        let base = try sharedScratch("planted")
        defer { _ = try? shell("rm -rf '\(base)'") }
        let board = "\(base)/mactcp-watch-\(getuid())"
        let target = "\(base)/root-only"
        try shell("printf secret > '\(target)' && chmod 600 '\(target)'")
        // The other user makes the board first, open to all, with links for the next PIDs.
        let planting = try OtherUser.run(
            """
            import os
            os.mkdir('\(board)'); os.chmod('\(board)', 0o777)
            first = int(open('/proc/sys/kernel/ns_last_pid').read())
            for pid in range(first, first + 400):
                os.symlink('\(target)', '\(board)/%d.status.new' % pid)
                os.symlink('\(target)', '\(board)/%d.status' % pid)
            print('PLANTED', flush=True)
            """)
        #expect(try planting.finish(timeout: 20).out.hasPrefix("PLANTED"))
        let port = try Tool.freePort()
        let listen = try tool(["listen", "--once", "--watch", "--port", String(port)], base: base)
        try waitUntil(timeout: 10, "the tool to listen") { listen.errors.contains("listening on port") }
        let client = try Peer.connect(port: port)
        try client.send("x")
        try waitUntil(timeout: 10, "the refusal") { listen.errors.contains("not publishing") }
        usleep(500_000)  // several publishing periods
        client.shutdownWrite()
        let result = try listen.finish()
        #expect(result.err.contains("belongs to another user"), "stderr: \(result.err)")
        #expect(try shell("cat '\(target)'") == "secret")
        #expect(try shell("stat -c %U:%a '\(target)'").trimmingCharacters(in: .whitespacesAndNewlines) == "root:600")
        let watch = try tool(["watch", "--frames", "1"], base: base).finish()
        #expect(watch.status == 64)
        #expect(watch.err.contains("belongs to another user"))
    }

    @Test("the watch board is private (0700, files 0600) and an interrupted tool leaves no file behind (20 runs)")
    func watchBoardPrivateAndClean() throws {
        let base = try sharedScratch("board")
        defer { _ = try? shell("rm -rf '\(base)'") }
        let board = "\(base)/mactcp-watch-\(getuid())"
        for run in 0..<20 {
            let port = try Tool.freePort()
            let listen = try tool(["listen", "--once", "--watch", "--port", String(port)], base: base)
            try waitUntil(timeout: 10, "the tool to listen") { listen.errors.contains("listening on port") }
            let client = try Peer.connect(port: port)
            let file = "\(board)/\(listen.pid).status"
            try waitUntil(timeout: 10, "the status file") { FileManager.default.fileExists(atPath: file) }
            if run == 0 {
                #expect(try shell("stat -c %a '\(board)'").trimmingCharacters(in: .whitespacesAndNewlines) == "700")
                #expect(try shell("stat -c %a '\(file)'").trimmingCharacters(in: .whitespacesAndNewlines) == "600")
            }
            usleep(UInt32.random(in: 0..<400_000))  // interrupted at any point of the publishing period
            listen.send(SIGINT)
            #expect(try listen.finish().status == 74)
            client.close()
            let left = try FileManager.default.contentsOfDirectory(atPath: board)
            #expect(left.isEmpty, "run \(run) left \(left)")
        }
    }

    @Test("an ICMP flood at a UDP stream with a 1 ms ASR and a slow event sequence: memory stays bounded, the latest report is kept")
    func icmpFlood() async {
        _ = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success) { () async -> Void in
                do {
                    try await icmpFloodInChild()
                } catch {
                    exit(9)
                }
            }
        }
        if let measured = try? String(contentsOfFile: icmpFloodReport(for: getpid()), encoding: .utf8) {
            print(measured)
            unlink(icmpFloodReport(for: getpid()))
        }
    }
}

/// Sends spoofed ICMP port-unreachable messages, each naming a datagram from 127.0.0.1:`port`
/// to 127.0.0.1:9, as fast as a raw socket allows for `seconds`; prints how many.
let icmpFloodScript = """
    import socket, struct, sys, time
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    def checksum(data):
        total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
        total = (total >> 16) + (total & 0xFFFF); total += total >> 16
        return ~total & 0xFFFF
    loop = socket.inet_aton('127.0.0.1')
    quoted = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 28, 0, 0, 64, 17, 0, loop, loop) + struct.pack('!HHHH', port, 9, 8, 0)
    header = struct.pack('!BBHI', 3, 3, 0, 0)
    message = struct.pack('!BBHI', 3, 3, checksum(header + quoted), 0) + quoted
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sent, end = 0, time.monotonic() + seconds
    while time.monotonic() < end:
        for _ in range(200):
            raw.sendto(message, ('127.0.0.1', 0))
        sent += 200
    print(sent, flush=True)
    """

/// Where the flood's child leaves what it measured, for the test (`parent`: the test's process).
func icmpFloodReport(for parent: Int32) -> String {
    NSTemporaryDirectory() + "/mactcp-icmp-flood-\(parent).txt"
}

/// The body of the ICMP flood test, in a child process (its memory is its own): exits 2 when
/// the flood was too small to tell, 3 when the resident size grew by more than 16 MiB, 4 when
/// the ASR or the sequence got more events than it could take in the time, 5 when the last
/// report is not the flood's. Measured: 598,200 messages in 5 s, the ASR called 3,988 times,
/// the sequence 4,077 events, RSS +2.4 MiB.
func icmpFloodInChild() async throws {
    exitAfter(seconds: 60)
    let stream = try UDPStream()
    let asrCalls = Mutex(0)
    stream.asr = { event, _ in
        guard event == .icmpReceived else { return }
        asrCalls.withLock { $0 += 1 }
        usleep(1000)
    }
    let consumer = Task {
        var count = 0
        for await (event, _) in stream.events where event == .icmpReceived {
            count += 1
            try? await Task.sleep(for: .milliseconds(1))
        }
        return count
    }
    usleep(100_000)
    let before = residentKiB()
    let seconds = 5.0
    let flood = try ChildProcess("python3", ["-c", icmpFloodScript, String(stream.port), String(seconds)])
    let result = try flood.finish(timeout: 30)
    let sent = Int(result.out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
    usleep(300_000)
    let grown = residentKiB() - before
    let report = stream.lastICMPReport
    stream.release()
    let sequenceEvents = await consumer.value
    let calls = asrCalls.withLock { $0 }
    let measured = "ICMP flood: \(sent) messages in \(seconds) s; ASR calls \(calls), sequence events \(sequenceEvents); RSS +\(grown) KiB"
    try? measured.write(toFile: icmpFloodReport(for: getppid()), atomically: true, encoding: .utf8)
    if sent < 50_000 { exit(2) }
    if grown > 16 * 1024 { exit(3) }
    // Each takes at least 1 ms: no more than the flood's time allows (and a last one after).
    let most = Int(seconds * 1000 * 1.5) + 10
    if calls > most || sequenceEvents > most || calls == 0 || sequenceEvents == 0 { exit(4) }
    if report?.icmpType != 3 || report?.icmpCode != 3 || report?.remotePort != 9 { exit(5) }
}
