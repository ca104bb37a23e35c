// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import MacTCP
import Testing

/// Runs the built `mactcp` tool end to end against plain-socket peers.
struct Tool {
    /// The `mactcp` binary next to the test bundle (SwiftPM builds it for the tests).
    static var path: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let exe = String(decoding: buffer[0..<max(0, count)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var directory = URL(fileURLWithPath: exe).deletingLastPathComponent()
        while directory.path != "/" {
            let candidate = directory.appendingPathComponent("mactcp").path
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
            directory = directory.deletingLastPathComponent()
        }
        return "mactcp"
    }

    /// Starts the tool with `arguments`; its standard output goes to `outputPath` if given.
    static func start(_ arguments: [String], outputPath: String? = nil) throws -> ChildProcess {
        try ChildProcess(path, arguments, outputPath: outputPath)
    }

    /// What a tmux session's screen shows (with `escapes`, its colours and attributes too).
    static func screen(of session: String, escapes: Bool = false) throws -> String {
        let capture = try ChildProcess("tmux", ["capture-pane", "-p"] + (escapes ? ["-e"] : []) + ["-t", session])
        capture.endInput()
        try capture.wait(timeout: 10)
        return capture.output
    }

    /// A free TCP port (bound and released).
    /// A TCP port no socket of either family uses now, below the kernel's ephemeral range
    /// (32768 and up), so that no connection made meanwhile takes it as its local port
    /// before the tool binds it.
    static func freePort() throws -> UInt16 {
        for _ in 0..<200 {
            let port = UInt16.random(in: 20_000..<32_000)
            let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
            defer { close(fd) }
            var off: Int32 = 0
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &off, 4)
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
            if bound == 0 { return port }
        }
        throw PeerError(description: "no free port below 32000")
    }
}

extension ChildProcess {
    /// Waits for the tool to exit (killing it at the deadline) and gives back its status and output.
    func finish(timeout: Double = 20) throws -> (status: Int32, out: String, err: String) {
        let status = try wait(timeout: timeout)
        return (status, output, errors)
    }
}

@Suite("mactcp command-line tool", .serialized, .timeLimit(.minutes(2)))
struct CLITests {
    @Test("connect --lines: lines go out (a '!' line as urgent data), end of input half-closes, replies come back")
    func connect() throws {
        let listener = try Peer.listener()
        let run = try Tool.start(["connect", "--lines", "127.0.0.1", String(listener.localPort)])
        let peer = try listener.accept()
        peer.setOOBInline()
        run.write("hello\n")
        #expect(try peer.receive(exactly: 6) == Array("hello\n".utf8))
        run.write("!URG\n")
        try peer.waitUnread(3)
        #expect(try peer.receive(max: 2) == Array("UR".utf8))
        #expect(peer.atMark)
        #expect(try peer.receive(max: 10) == Array("G\n".utf8))
        run.endInput()
        #expect(try peer.receiveToEnd().isEmpty)  // our half-close
        try peer.send("reply after your FIN")
        peer.shutdownWrite()
        let (status, out, err) = try run.finish()
        #expect(status == 0, "stderr: \(err)")
        #expect(out == "reply after your FIN")
        #expect(err.contains("the peer has closed"))
    }

    @Test("connect takes IPv6 literals and names: [::1] directly, localhost by Happy Eyeballs; listen --from [::1] takes only ::1")
    func hostsOfEitherFamily() throws {
        let six = try Peer.listener6()
        let direct = try Tool.start(["connect", "::1", String(six.localPort)])
        let peer = try six.accept()
        direct.write("over six")
        #expect(try peer.receive(exactly: 8) == Array("over six".utf8))
        direct.endInput()
        peer.close()
        let (status, _, err) = try direct.finish()
        #expect(status == 0 && err.contains("connected to [::1]:\(six.localPort)"), "\(err)")

        let four = try Peer.listener()
        let named = try Tool.start(["connect", "localhost", String(four.localPort)])
        let other = try four.accept()
        named.endInput()
        other.close()
        let (namedStatus, _, namedErr) = try named.finish()
        #expect(namedStatus == 0 && namedErr.contains("connected to localhost port \(four.localPort) (127.0.0.1)"), "\(namedErr)")

        let port = try Tool.freePort()
        let listen = try Tool.start(["listen", "--once", "--port", String(port), "--from", "[::1]"])
        var client: Peer?
        // An IPv4 client is reset while the tool waits for ::1 (refused before it listens).
        try waitUntil(timeout: 10, "the tool to reset an IPv4 client") { (try? Peer.isReset(connectingTo: port)) == true }
        client = try Peer.connect6(port: port)
        try client?.send("from six")
        client?.close()
        let (listenStatus, out, listenErr) = try listen.finish()
        #expect(listenStatus == 0 && out == "from six", "\(listenErr)")
        #expect(listenErr.contains("connected from [::1]:"), "\(listenErr)")
    }

    @Test("listen --once: prints what arrives, urgent data marked with its mark, echoes with --echo")
    func listen() throws {
        let port = try Tool.freePort()
        let run = try Tool.start(["listen", "--once", "--echo", "--port", String(port), "--events"])
        var client: Peer?
        try waitUntil(timeout: 10, "the tool to listen") {
            client = try? Peer.connect(port: port, timeout: 1)
            return client != nil
        }
        let peer = try #require(client)
        peer.setOOBInline()
        try peer.send("abc")
        #expect(try peer.receive(exactly: 3) == Array("abc".utf8))
        try peer.sendUrgent(Array("XY".utf8))
        try peer.waitUnread(2)
        _ = try peer.receive(max: 1)
        #expect(peer.atMark)
        #expect(try peer.receive(max: 1) == Array("Y".utf8))
        peer.shutdownWrite()
        #expect(try peer.receiveToEnd().isEmpty)
        let (status, out, err) = try run.finish()
        #expect(status == 0, "stderr: \(err)")
        #expect(out == "abcXY")
        #expect(err.contains("urgent data: 2 bytes at offset 3, region starts, mark after byte 5"))
        #expect(err.contains("event passiveOpenDone"))
        #expect(err.contains("event closing"))
    }

    @Test("send and receive move 100 MB byte-exact; send exits 0 once everything was acknowledged")
    func bulk() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mactcp-cli-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("source")
        var generator = SeededGenerator(seed: 42)
        var data = Data(count: 100 << 20)
        data.withUnsafeMutableBytes { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for index in words.indices { words[index] = generator.next() }
        }
        try data.write(to: source)
        let target = directory.appendingPathComponent("target")
        let port = try Tool.freePort()
        let receiver = try Tool.start(["receive", "--port", String(port), "--timeout", "20"], outputPath: target.path)
        var sender: ChildProcess?
        try waitUntil(timeout: 10, "the receiver") {
            // The receiver takes exactly one connection: probe with the sender itself.
            sender = try Tool.start(["send", "127.0.0.1", String(port), source.path])
            let result = try sender!.finish(timeout: 60)
            if result.status == 0 { return true }
            #expect(result.status == 69, "stderr: \(result.err)")
            return false
        }
        let (status, _, err) = try receiver.finish(timeout: 60)
        #expect(status == 0, "stderr: \(err)")
        #expect(try Data(contentsOf: target) == data)
    }

    @Test(
        "bad input gets a clear error and its documented exit status, never a crash",
        arguments: [
            (["connect", "999.1.1.1", "80"], Int32(64)),
            (["connect", "127.0.0.1", "0"], Int32(64)),
            (["connect", "127.0.0.1", "70000"], Int32(64)),
            (["connect", "127.0.0.1", "80", "--timeout", "-1"], Int32(64)),
            (["listen", "--pool", "0"], Int32(64)),
            (["receive", "--timeout", "0.2"], Int32(75)),
        ])
    func badInput(arguments: [String], expected: Int32) throws {
        let (status, _, err) = try Tool.start(arguments).finish()
        #expect(status == expected, "stderr: \(err)")
        #expect(!err.contains("Fatal error"))
        #expect(!err.isEmpty)
    }

    @Test("refused and port-in-use have their exit statuses and name the MacTCP code")
    func refusedAndInUse() throws {
        let closed = try Tool.freePort()
        let refused = try Tool.start(["connect", "127.0.0.1", String(closed), "--timeout", "5"]).finish()
        #expect(refused.status == 69)
        #expect(refused.err.contains("openFailed (-23015)"))
        #expect(refused.err.contains("hint:"))
        let busy = try Peer.listener()
        let inUse = try Tool.start(["listen", "--port", String(busy.localPort)]).finish()
        #expect(inUse.status == 73)
        #expect(inUse.err.contains("duplicateSocket (-23017)"))
    }

    @Test("Ctrl-C aborts the connection: the peer gets a reset")
    func abort() throws {
        let listener = try Peer.listener()
        let run = try Tool.start(["connect", "127.0.0.1", String(listener.localPort)])
        let peer = try listener.accept()
        run.write("x\n")
        _ = try peer.receive(exactly: 2)
        run.send(SIGINT)
        #expect(throws: Peer.ReceiveFailure.self) { _ = try peer.receive(timeout: 5) }
        let (status, _, err) = try run.finish()
        #expect(status == 74)
        #expect(err.contains("aborted"))
    }

    @Test("info --json has the interface and the kernel's counters")
    func info() throws {
        let (status, out, _) = try Tool.start(["info", "--json"]).finish()
        #expect(status == 0)
        let object = try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any]
        #expect(object?["tcpRtoMin"] as? Int == 200)
        #expect(object?["ipAddr"] as? String == IPv4.string(MacTCPDriver.ipAddr()))
    }

    @Test("udp send and udp listen")
    func udp() throws {
        let probe = try UDPPeer()
        let port = probe.port
        _ = consume probe
        let listen = try Tool.start(["udp", "listen", "--port", String(port), "--count", "1", "--json", "--timeout", "10"])
        usleep(300_000)
        let send = try Tool.start(["udp", "send", "127.0.0.1", String(port), "datagram"]).finish()
        #expect(send.status == 0, "stderr: \(send.err)")
        let (status, out, _) = try listen.finish()
        #expect(status == 0)
        #expect(out.contains("\"bytes\":8"))
        #expect(out.contains("\"text\":\"datagram\""))
        let closed = try UDPPeer()
        let closedPort = closed.port
        _ = consume closed
        let unreachable = try Tool.start(["udp", "send", "127.0.0.1", String(closedPort), "anyone?"]).finish()
        #expect(unreachable.status == 69)
        #expect(unreachable.err.contains("ICMP port unreachable (type 3, code 3)"))
    }

    @Test(
        "on a terminal (tmux), urgent data is highlighted and the mark shown",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs tmux"))
    func terminal() throws {
        let port = try Tool.freePort()
        let session = "mactcp-test-\(getpid())"
        try shell(
            "tmux new-session -d -s \(session) -x 120 -y 20 '\(Tool.path) listen --once --port \(port); sleep 30' </dev/null >/dev/null 2>&1"
        )
        defer { _ = try? shell("tmux kill-session -t \(session)") }
        var client: Peer?
        try waitUntil(timeout: 10, "the tool to listen") {
            client = try? Peer.connect(port: port, timeout: 1)
            return client != nil
        }
        let peer = try #require(client)
        try peer.send("plain ")
        usleep(100_000)
        try peer.sendUrgent(Array("URGENT".utf8))
        var screen = ""
        try waitUntil(timeout: 10, "the mark on the screen") {
            screen = try Tool.screen(of: session, escapes: true)
            return screen.contains("⟨mark⟩")
        }
        #expect(screen.contains("plain "))
        #expect(screen.contains("\u{1B}[7mURGENT"))
        // The note on standard error starts a line of its own: it does not run into the data.
        try waitUntil(timeout: 10, "the urgent note") {
            screen = try Tool.screen(of: session)
            return screen.contains("urgent data: 6 bytes")
        }
        let markLine = screen.split(separator: "\n").first { $0.contains("⟨mark⟩") } ?? ""
        #expect(markLine.hasSuffix("⟨mark⟩"), "the mark's line: \(markLine)")
        #expect(screen.split(separator: "\n").contains { $0.hasPrefix("[connection") && $0.contains("urgent data: 6 bytes") })
    }

    @Test(
        "connect on a terminal reads lines: a '!' line is urgent data, Ctrl-D half-closes (tmux)",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs tmux"))
    func connectOnATerminal() throws {
        let listener = try Peer.listener()
        let session = "mactcp-connect-\(getpid())"
        try shell(
            "tmux new-session -d -s \(session) -x 120 -y 20 '\(Tool.path) connect 127.0.0.1 \(listener.localPort); sleep 30' >/dev/null 2>&1"
        )
        defer { _ = try? shell("tmux kill-session -t \(session)") }
        let peer = try listener.accept(timeout: 10)
        peer.setOOBInline()
        try shell("tmux send-keys -t \(session) '!UR' Enter 'hi' Enter")
        try peer.waitUnread(6)
        #expect(try peer.receive(max: 10) == Array("U".utf8))  // a read stops at the mark
        #expect(peer.atMark)
        #expect(try peer.receive(exactly: 5) == Array("R\nhi\n".utf8))
        try shell("tmux send-keys -t \(session) C-d")
        #expect(try peer.receiveToEnd().isEmpty)  // our half-close
    }

    @Test(
        "watch: a live status view of a `listen --watch` connection, refreshed in place (tmux)",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs tmux"))
    func watch() throws {
        let port = try Tool.freePort()
        let listen = try Tool.start(["listen", "--once", "--watch", "--port", String(port)])
        var client: Peer?
        try waitUntil(timeout: 10, "the tool to listen") {
            client = try? Peer.connect(port: port, timeout: 1)
            return client != nil
        }
        let peer = try #require(client)
        try peer.send([UInt8](repeating: 0x77, count: 5000))
        let session = "mactcp-watch-\(getpid())"
        let pid = listen.pid
        try shell("tmux new-session -d -s \(session) -x 120 -y 20 '\(Tool.path) watch --pid \(pid); sleep 30' </dev/null >/dev/null 2>&1")
        defer { _ = try? shell("tmux kill-session -t \(session)") }
        var screen = ""
        try waitUntil(timeout: 10, "the status view") {
            screen = try Tool.screen(of: session)
            return screen.contains("established (8)") && screen.contains("▁")
        }
        #expect(screen.contains("mactcp watch"))
        #expect(screen.contains("sendWindow"))
        #expect(screen.contains("congestionWindow"))
        #expect(screen.contains("local \(port)"))
        peer.shutdownWrite()
        _ = try listen.finish()
    }

    @Test("listen without --once serves several clients at once; --json prints events as JSON lines")
    func pool() throws {
        let port = try Tool.freePort()
        let listen = try Tool.start(["listen", "--echo", "--json", "--pool", "3", "--port", String(port)])
        defer { listen.send(SIGKILL) }
        // The tool says so once the whole pool waits (a client that came earlier could find
        // only the first stream, and the next one refused, as MacTCP would).
        try waitUntil(timeout: 10, "the tool to listen") { listen.errors.contains("listening on port") }
        let clients = [try Peer.connect(port: port), try Peer.connect(port: port), try Peer.connect(port: port)]
        for (index, client) in clients.enumerated() {
            try client.send("client \(index)")
        }
        for (index, client) in clients.enumerated() {
            #expect(try client.receive(exactly: 8) == Array("client \(index)".utf8))
            client.shutdownWrite()
            #expect(try client.receiveToEnd().isEmpty)
        }
        usleep(200_000)
        listen.send(SIGKILL)
        let (_, out, err) = try listen.finish()
        #expect(out.contains("client 0") && out.contains("client 1") && out.contains("client 2"))
        #expect(err.contains("{\"stream\":\"connection"))
        #expect(err.contains("\"event\":\"passiveOpenDone\",\"code\":32766,\"detail\":0"))
        #expect(err.contains("\"event\":\"closing\""))
    }

    @Test(
        "send on a terminal shows a progress bar with bytes, rate, percentage (tmux)",
        .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs tmux"))
    func progress() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mactcp-progress-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let source = directory.appendingPathComponent("source")
        try Data(count: 20 << 20).write(to: source)
        let port = try Tool.freePort()
        let receiver = try Tool.start(
            ["receive", "--port", String(port), "--timeout", "20"], outputPath: directory.appendingPathComponent("target").path)
        usleep(300_000)
        let session = "mactcp-progress-\(getpid())"
        try shell(
            "tmux new-session -d -s \(session) -x 120 -y 20 '\(Tool.path) send 127.0.0.1 \(port) \(source.path); sleep 30' </dev/null >/dev/null 2>&1"
        )
        defer { _ = try? shell("tmux kill-session -t \(session)") }
        var screen = ""
        try waitUntil(timeout: 20, "the finished progress bar") {
            screen = try Tool.screen(of: session)
            return screen.contains("all acknowledged")
        }
        #expect(screen.contains("\(20 << 20) bytes"))
        #expect(screen.contains("MB/s"))
        #expect(screen.contains("] 100%"))
        #expect(try receiver.finish().status == 0)
    }
}
