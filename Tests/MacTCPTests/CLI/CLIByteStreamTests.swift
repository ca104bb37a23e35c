// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import MacTCP
import Testing

@testable import mactcp

/// The tool as a netcat that never loses or changes a byte, and says so when a transfer is
/// cut short.
@Suite("mactcp: bytes, signals, arguments", .serialized, .timeLimit(.minutes(3)))
struct CLIByteStreamTests {
    /// Random bytes that are not text: every value 0…255, invalid UTF-8 and lines that start
    /// with '!' among them.
    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var generator = SeededGenerator(seed: seed)
        var bytes = (0..<count).map { _ in UInt8(truncatingIfNeeded: generator.next()) }
        bytes.replaceSubrange(0..<6, with: Array("!URG\n!".utf8))
        return bytes
    }

    /// A scratch directory of the test's own.
    static func scratch(_ name: String) throws -> URL {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("mactcp-\(name)-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return directory
    }

    @Test("connect sends standard input byte for byte (1 MB of random bytes)")
    func connectIsBinarySafe() throws {
        let sent = Self.randomBytes(1 << 20, seed: 7)
        let listener = try Peer.listener()
        let run = try Tool.start(["connect", "127.0.0.1", String(listener.localPort)])
        let peer = try listener.accept()
        let writer = Background {
            run.write(bytes: sent)
            run.endInput()
        }
        let received = try peer.receiveToEnd(timeout: 30)
        _ = try writer.value(timeout: 10)
        #expect(received.count == sent.count)
        #expect(received == sent)
        peer.shutdownWrite()
        let (status, _, err) = try run.finish(timeout: 30)
        #expect(status == 0, "stderr: \(err)")
    }

    @Test("listen writes what arrives to standard output byte for byte (1 MB of random bytes)")
    func listenIsBinarySafe() throws {
        let directory = try Self.scratch("listen-bytes")
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("out")
        let port = try Tool.freePort()
        let run = try Tool.start(["listen", "--once", "--port", String(port)], outputPath: target.path)
        var client: Peer?
        try waitUntil(timeout: 10, "the tool to listen") {
            client = try? Peer.connect(port: port, timeout: 1)
            return client != nil
        }
        let peer = try #require(client)
        let sent = Self.randomBytes(1 << 20, seed: 9)
        try peer.send(sent, timeout: 30)
        peer.shutdownWrite()
        #expect(try peer.receiveToEnd(timeout: 30).isEmpty)
        let (status, _, err) = try run.finish(timeout: 30)
        #expect(status == 0, "stderr: \(err)")
        #expect(try Data(contentsOf: target) == Data(sent))
    }

    @Test("the reply to connect reaches standard output byte for byte")
    func connectOutputIsBinarySafe() throws {
        let directory = try Self.scratch("connect-out")
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("out")
        let reply = Self.randomBytes(1 << 20, seed: 10)
        let listener = try Peer.listener()
        let run = try Tool.start(["connect", "127.0.0.1", String(listener.localPort)], outputPath: target.path)
        let peer = try listener.accept()
        run.endInput()
        #expect(try peer.receiveToEnd().isEmpty)
        try peer.send(reply, timeout: 30)
        peer.shutdownWrite()
        let (status, _, err) = try run.finish(timeout: 30)
        #expect(status == 0, "stderr: \(err)")
        #expect(try Data(contentsOf: target) == Data(reply))
    }

    @Test(
        "an interrupted send aborts: the receiver reports the reset and exits 74, never 0",
        arguments: [SIGINT, SIGTERM, SIGHUP])
    func interruptedSend(signal: Int32) throws {
        let directory = try Self.scratch("interrupted")
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("out")
        let port = try Tool.freePort()
        let receiver = try Tool.start(["receive", "--port", String(port), "--timeout", "20"], outputPath: target.path)
        try waitUntil(timeout: 10, "the receiver") { receiver.errors.contains("listening on port") }
        let sender = try Tool.start(["send", "127.0.0.1", String(port), "-"])
        sender.write(bytes: Self.randomBytes(200_000, seed: UInt64(signal)))
        try waitUntil(timeout: 10, "the first bytes to arrive") {
            var info = stat()
            return stat(target.path, &info) == 0 && info.st_size >= 100_000
        }
        sender.send(signal)
        let sent = try sender.finish()
        #expect(sent.status == 74, "stderr: \(sent.err)")
        #expect(sent.err.contains("connection aborted"))
        let received = try receiver.finish()
        #expect(received.status == 74, "stderr: \(received.err)")
        #expect(received.err.contains("connectionTerminated"))
        #expect(!received.err.contains("received 200000 bytes"))
    }

    @Test("send exits 74, never 0, when the peer reads 1,000 bytes and resets")
    func sendToResettingPeer() throws {
        let directory = try Self.scratch("reset-send")
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("data")
        try Data(Self.randomBytes(8 << 20, seed: 11)).write(to: file)
        let listener = try Peer.listener()
        listener.setReceiveBuffer(4096)
        let sender = try Tool.start(["send", "127.0.0.1", String(listener.localPort), file.path])
        let peer = try listener.accept()
        _ = try peer.receive(exactly: 1000)
        peer.reset()
        let (status, _, err) = try sender.finish()
        #expect(status == 74, "stderr: \(err)")
        #expect(err.contains("connectionTerminated"))
        #expect(!err.contains("all acknowledged"))
    }

    @Test("connect exits 74 when the peer resets after our half-close, though our side closed in order")
    func connectToResettingPeer() throws {
        let listener = try Peer.listener()
        let run = try Tool.start(["connect", "127.0.0.1", String(listener.localPort)])
        let peer = try listener.accept()
        run.write("bye")
        run.endInput()
        #expect(try peer.receiveToEnd() == Array("bye".utf8))
        usleep(100_000)  // the tool's close() has seen its FIN acknowledged
        peer.reset()
        let (status, _, err) = try run.finish()
        #expect(status == 74, "stderr: \(err)")
        #expect(err.contains("connectionTerminated"))
    }

    @Test("listen --idle-timeout aborts a client that sends nothing, and the stream serves the next one")
    func idleTimeout() throws {
        let port = try Tool.freePort()
        let server = try Tool.start(["listen", "--port", String(port), "--pool", "1", "--idle-timeout", "0.5"])
        try waitUntil(timeout: 10, "the server") { server.errors.contains("listening on port") }
        let idle = try Peer.connect(port: port)
        let start = Clock.now
        #expect(throws: Peer.ReceiveFailure.self) { _ = try idle.receiveToEnd(timeout: 10) }
        #expect(Clock.now - start >= 0.4)
        var next: Peer?
        try waitUntil(timeout: 10, "the stream waiting again") {
            next = try? Peer.connect(port: port, timeout: 1)
            return next != nil
        }
        try #require(next).send("after")
        try waitUntil(timeout: 10, "the next client served") { server.output.contains("after") }
        server.send(SIGTERM)
        let result = try server.finish()
        #expect(result.err.contains("--idle-timeout"), "stderr: \(result.err)")
    }

    @Test("an interrupted connect aborts too: the peer gets a reset", arguments: [SIGTERM, SIGHUP])
    func interruptedConnect(signal: Int32) throws {
        let listener = try Peer.listener()
        let run = try Tool.start(["connect", "127.0.0.1", String(listener.localPort)])
        let peer = try listener.accept()
        run.write("x")
        _ = try peer.receive(exactly: 1)
        run.send(signal)
        #expect(throws: Peer.ReceiveFailure.self) { _ = try peer.receiveToEnd(timeout: 5) }
        #expect(try run.finish().status == 74)
    }

    @Test(
        "receive --size: fewer or more bytes than expected exit 74 and say so; exactly that many exit 0",
        arguments: [(1000, Int32(74), "more"), (10_000, Int32(74), "missing"), (5000, Int32(0), "received 5000 bytes")])
    func receiveSize(expected: Int, status: Int32, says: String) throws {
        let port = try Tool.freePort()
        let receiver = try Tool.start(["receive", "--port", String(port), "--size", String(expected), "--timeout", "20"])
        try waitUntil(timeout: 10, "the receiver") { receiver.errors.contains("listening on port") }
        let peer = try Peer.connect(port: port)
        try peer.send([UInt8](repeating: 1, count: 5000))
        peer.shutdownWrite()
        let result = try receiver.finish()
        #expect(result.status == status, "stderr: \(result.err)")
        #expect(result.err.contains(says))
        #expect(!result.err.contains("Fatal error"))
    }

    @Test("a signal to an idle server ends it with 128 + the signal's number: nothing was cut short")
    func interruptedIdleListen() throws {
        let port = try Tool.freePort()
        let run = try Tool.start(["listen", "--port", String(port)])
        try waitUntil(timeout: 10, "the tool to listen") { run.errors.contains("listening on port") }
        run.send(SIGTERM)
        let (status, _, err) = try run.finish()
        #expect(status == 128 + SIGTERM, "stderr: \(err)")
        #expect(!err.contains("connection aborted"))
    }

    @Test("connect --lines: a '!' line is urgent data, its newline follows as normal data")
    func urgentLineKeepsItsNewline() throws {
        let listener = try Peer.listener()
        let run = try Tool.start(["connect", "--lines", "127.0.0.1", String(listener.localPort)])
        let peer = try listener.accept()
        peer.setOOBInline()
        run.write("!URG\nnext\n")
        try peer.waitUnread(9)
        // Inline urgent data stops a read at the mark, which is on the last urgent byte.
        #expect(try peer.receive(max: 9) == Array("UR".utf8))
        #expect(peer.atMark)
        run.endInput()
        let rest = try peer.receiveToEnd()
        #expect(rest == Array("G\nnext\n".utf8))
        peer.shutdownWrite()
        #expect(try run.finish().status == 0)
    }

    @Test("connect --exit-on-close exits once the peer has closed, though input goes on")
    func exitOnClose() throws {
        let listener = try Peer.listener()
        let run = try Tool.start(["connect", "--exit-on-close", "127.0.0.1", String(listener.localPort)])
        let peer = try listener.accept()
        try peer.send("bye\n")
        peer.shutdownWrite()
        let (status, out, err) = try run.finish(timeout: 10)  // input never ends
        #expect(status == 0, "stderr: \(err)")
        #expect(out == "bye\n")
        #expect(try peer.receiveToEnd().isEmpty)  // our FIN, not a reset
    }

    @Test(
        "every subcommand validates its arguments with the same rules: exit 64 and what is wrong",
        arguments: [
            ["connect", "127.0.0.1", "80", "--timeout", "-1"],
            ["connect", "127.0.0.1", "80", "--timeout=nan"],
            ["connect", "127.0.0.1", "80", "--local-port", "70000"],
            ["send", "127.0.0.1", "0", "-"],
            ["send", "127.0.0.1", "80", "-", "--timeout", "-5"],
            ["receive", "--size=-5"],
            ["receive", "--size", "-5"],
            ["receive", "--port", "-1"],
            ["receive", "--timeout", "inf"],
            ["listen", "--pool", "-3"],
            ["listen", "--pool", "2000"],
            ["listen", "--from", "300.0.0.1"],
            ["udp", "send", "127.0.0.1", "0", "x"],
            ["udp", "send", "127.0.0.1", "9", "x", "--wait", "-1"],
            ["udp", "listen", "--count", "-1"],
            ["udp", "listen", "--port", "65536"],
            ["watch", "--frames", "-2"],
        ])
    func badArguments(arguments: [String]) throws {
        let (status, _, err) = try Tool.start(arguments).finish()
        #expect(status == 64, "stderr: \(err)")
        #expect(err.contains("Error:"))
        #expect(!err.contains("Missing value"))
        #expect(!err.contains("Fatal error"))
    }

    @Test("with almost no descriptors left, a clear insufficientResources error instead of a trap", arguments: [5, 6])
    func descriptorLimit(limit: Int) throws {
        let run = try ChildProcess("/bin/sh", ["-c", "ulimit -n \(limit); exec \(Tool.path) listen --once --port 0"])
        run.endInput()
        let (status, _, err) = try run.finish()
        #expect(status == 74, "stderr: \(err)")
        #expect(err.contains("insufficientResources (-23009)"))
        #expect(err.contains("Too many open files"))
    }

    @Test("--version prints the version")
    func version() throws {
        let (status, out, _) = try Tool.start(["--version"]).finish()
        #expect(status == 0)
        #expect(out == ExitStatus.version + "\n")
    }

    @Test("with --json every line on standard error is one JSON object")
    func jsonLines() throws {
        let port = try Tool.freePort()
        let run = try Tool.start(["listen", "--once", "--json", "--port", String(port)])
        var client: Peer?
        try waitUntil(timeout: 10, "the tool to listen") {
            client = try? Peer.connect(port: port, timeout: 1)
            return client != nil
        }
        let peer = try #require(client)
        try peer.send("abc")
        try peer.sendUrgent(Array("\u{1B}]2;x\u{07}".utf8))
        usleep(100_000)
        peer.reset()
        let (status, _, err) = try run.finish()
        #expect(status == 74)
        let lines = err.split(separator: "\n")
        #expect(lines.count >= 4)
        for line in lines {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object != nil, "not a JSON object: \(line)")
        }
        #expect(err.contains("\"urgent\":{\"bytes\":"))
        #expect(err.contains("\"error\":\"connectionTerminated\""))
    }

    @Test("udp listen --json carries every byte (base64); text mode escapes what a terminal would act on")
    func udpBytes() throws {
        let payload: [UInt8] = [0x1B, 0x5D, 0x32, 0x3B, 0x70, 0x07, 0x1B, 0x5B, 0x32, 0x4A, 0xFF, 0xC3, 0x28, 0x9B, 0x7F, 0x41]
        for json in [true, false] {
            let probe = try UDPPeer()
            let port = probe.port
            _ = consume probe
            let listen = try Tool.start(
                ["udp", "listen", "--port", String(port), "--count", "1", "--timeout", "10"] + (json ? ["--json"] : []))
            try waitUntil(timeout: 10, "the tool to listen") { listen.errors.contains("listening on UDP port") }
            let sender = try UDPPeer()
            try sender.send(payload, to: port)
            let (status, out, err) = try listen.finish()
            #expect(status == 0, "stderr: \(err)")
            #expect(!out.unicodeScalars.contains { $0.value < 0x20 && $0 != "\n" || (0x7F...0x9F).contains($0.value) })
            if json {
                let object = try #require(try JSONSerialization.jsonObject(with: Data(out.utf8)) as? [String: Any])
                let decoded = try #require((object["base64"] as? String).flatMap { Data(base64Encoded: $0) })
                #expect(Array(decoded) == payload)
                #expect(object["text"] == nil)  // not UTF-8
            } else {
                #expect(out.contains("16 bytes: \\e]2;p\\x07\\e[2J\\xFF\\xC3(\\x9B\\x7FA"))
            }
        }
    }

    @Test("udp send names the ICMP message it got back")
    func udpICMPByName() throws {
        let closed = try UDPPeer()
        let closedPort = closed.port
        _ = consume closed
        let unreachable = try Tool.start(["udp", "send", "127.0.0.1", String(closedPort), "anyone?"]).finish()
        #expect(unreachable.status == 69)
        #expect(
            unreachable.err.contains(
                "ICMP port unreachable (type 3, code 3) from 127.0.0.1 about 127.0.0.1:\(closedPort), MacTCP portUnreach"))
    }
}

/// The tool's pure parts, directly.
@Suite("mactcp: composed lines")
struct CLIFormattingTests {
    @Test("the progress line says more than expected instead of drawing it, and rounds the time left up")
    func progressLine() {
        let over = Progress.line(done: 1_000_000, total: 1000, seconds: 1)
        #expect(over.contains("999000 more than the 1000 expected"))
        #expect(!over.contains("["))
        let half = Progress.line(done: 50, total: 100, seconds: 10)  // 5 bytes/s, 50 left
        #expect(half.contains("[" + String(repeating: "#", count: 15) + String(repeating: ".", count: 15) + "] 50%"))
        #expect(half.hasSuffix("ETA 10 s"))
        #expect(Progress.line(done: 1, total: 3, seconds: 1).hasSuffix("ETA 2 s"))
        #expect(Progress.line(done: 10, total: 31, seconds: 1).hasSuffix("ETA 3 s"))  // 2.1 s is 3
        #expect(Progress.line(done: 100, total: 100, seconds: 1).hasSuffix("] 100%"))
    }

    @Test("escaping: C0, DEL and C1 shown, backslash doubled, text and tab kept")
    func escaping() {
        #expect(Console.escaped("a\tb") == "a\tb")
        #expect(Console.escaped("\u{1B}[2J\u{7F}\u{9B}\\é") == "\\e[2J\\x7F\\x9B\\\\é")
        #expect(Console.escaped([0x41, 0xFF, 0xE2, 0x82, 0xAC, 0xE2, 0x82]) == "A\\xFF€\\xE2\\x82")
        #expect(jsonString("\"\u{7F}\u{85}\n") == "\"\\\"\\u007F\\u0085\\n\"")
    }

    @Test("base64 is RFC 4648's", arguments: [0, 1, 2, 3, 4, 5, 255, 256, 1000])
    func base64Encoding(count: Int) {
        let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        #expect(base64(bytes) == Data(bytes).base64EncodedString())
    }
}
