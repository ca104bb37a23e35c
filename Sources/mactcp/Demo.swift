// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser
import Dispatch
import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `mactcp demo`: a guided tour of one MacTCP connection on loopback, in one process.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A guided tour of MacTCP's TCP streams on loopback: open, send, urgent data, status, half-close, abort.",
        discussion: """
            Runs a server stream and a client stream in this process, talking over 127.0.0.1. \
            Every call is printed with its result, and every event the streams' ASRs receive \
            is printed as it happens. Nothing leaves the machine.
            """
    )

    func run() throws {
        let tour = Tour()
        do {
            try tour.run()
        } catch let error as MacTCPError {
            tour.say("\nThe tour stopped: \(error)")
            throw ExitCode.failure
        }
    }
}

/// The tour itself: prints each step, the calls, their results and the events.
private final class Tour: Sendable {
    private let output = Mutex(())
    private let seen = Mutex<[String: Int]>([:])

    func say(_ text: String) {
        output.withLock { _ in
            print(text)
            fflush(nil)
        }
    }

    private func step(_ number: Int, _ title: String, _ explanation: String) {
        say("\n\(number). \(title)")
        say("   " + explanation)
    }

    private func call(_ text: String) {
        say("   → \(text)")
    }

    private func show(_ result: TCPReceived, _ who: String) {
        let text = String(decoding: result.data, as: UTF8.self)
        say("   ← \(who).receive: \"\(text)\"  urgent: \(result.urgent)  mark: \(result.mark)")
    }

    /// An ASR that prints each event as it happens.
    private func asr(for name: String) -> @Sendable (TCPEvent, Int) -> Void {
        { [self] event, detail in
            var text = "   ⚡ \(name)'s ASR: .\(event) (event \(event.rawValue))"
            switch event {
            case .terminate:
                let reason = TCPTerminationReason(rawValue: detail).map { ".\($0)" } ?? "\(detail)"
                text += ", reason \(reason) (\(detail)): the connection is over"
            case .passiveOpenDone:
                text += detail == 0 ? ", result 0: a client is connected" : ", result \(MacTCPError(code: detail).name)"
            case .icmpReceived:
                text += ", ICMP type \(detail): an ICMP error came back about this connection"
            case .dataArrival:
                text += ": data is waiting to be received (said once until a receive takes it)"
            case .urgent:
                text += ": urgent data is waiting; the next receives return it first"
            case .closing:
                text += ": the peer has closed its side and everything it sent was read"
            case .ulpTimeout:
                text += ": sent data stayed unacknowledged for the ULP timeout"
            }
            say(text)
            seen.withLock { $0["\(name).\(event)", default: 0] += 1 }
        }
    }

    /// Waits (at most two seconds) until `name` has seen `event`, so the output stays in order.
    private func expect(_ name: String, _ event: TCPEvent) {
        for _ in 0..<400 {
            if seen.withLock({ $0["\(name).\(event)", default: 0] }) > 0 { break }
            usleep(5000)
        }
        usleep(20_000)
    }

    private func waitForUnread(_ stream: TCPStream, _ count: Int) throws {
        for _ in 0..<400 where try stream.status().amtUnreadData < count {
            usleep(5000)
        }
    }

    func run() throws {
        say("MacTCP for Swift — a guided tour on loopback (127.0.0.1)")
        say("Two TCP streams talk to each other in this process: a server and a client.")
        say("Each has an ASR, an event routine the library calls when something happens.")

        step(
            1, "Create two streams and give them an ASR",
            "A stream carries one connection at a time and can be reused afterwards.")
        let server = try TCPStream()
        let client = try TCPStream()
        server.asr = asr(for: "server")
        client.asr = asr(for: "client")
        call("server = TCPStream(), client = TCPStream()")

        step(
            2, "Passive open: the server waits for a client",
            "passiveOpen returns at once; port 0 asks the system for a free port.")
        try server.passiveOpen(port: 0, timeout: .seconds(10))
        let port = server.getSockName().port
        call("server.passiveOpen(port: 0) → getSockName() = \(IPv4.string(server.getSockName().host)):\(port), isDone = \(server.isDone)")

        step(
            3, "Active open: the client connects",
            "activeOpen blocks until the connection is established; the server's wait() then returns.")
        try client.activeOpen(host: IPv4.loopback, remotePort: port, timeout: .seconds(10))
        call("client.activeOpen(host: 127.0.0.1, remotePort: \(port)) → connected from port \(client.getSockName().port)")
        try server.wait()
        expect("server", .passiveOpenDone)
        call("server.wait() → returned, isDone = \(server.isDone)")

        step(4, "A normal send", "send(push: true), the default, sends at once.")
        try client.send("Hello, Macintosh!")
        call("client.send(\"Hello, Macintosh!\")")
        expect("server", .dataArrival)
        show(try server.receive(timeout: .seconds(5)), "server")

        step(
            5, "Non-pushed sends",
            "push: false lets TCP hold the bytes and send them with the next send (Linux MSG_MORE).")
        try client.send("three ", push: false)
        try client.send("parts, ", push: false)
        call("client.send(\"three \", push: false), client.send(\"parts, \", push: false)")
        usleep(50_000)
        call("50 ms later the server has \(try server.status().amtUnreadData) bytes waiting: nothing left yet")
        try client.send("one segment")
        call("client.send(\"one segment\")  (push: true flushes all of it together)")
        expect("server", .dataArrival)
        try waitForUnread(server, 24)
        show(try server.receive(timeout: .seconds(5)), "server")

        step(
            6, "Urgent data",
            "urgent: true marks the whole buffer urgent; the receiver gets it apart from normal data, "
                + "with urgent on its first result and mark on the result that ends with its last byte.")
        try client.send("URGENT!", urgent: true)
        try client.send(" then normal data")
        call("client.send(\"URGENT!\", urgent: true), client.send(\" then normal data\")")
        expect("server", .urgent)
        try waitForUnread(server, 24)
        show(try server.receive(timeout: .seconds(5), maxLength: 3), "server")
        show(try server.receive(timeout: .seconds(5), maxLength: 3), "server")
        show(try server.receive(timeout: .seconds(5), maxLength: 3), "server")
        say("   (maxLength: 3 splits the region: urgent on the first part, mark on the last, neither between)")
        show(try server.receive(timeout: .seconds(5)), "server")

        step(7, "Status", "status() reads the kernel's view of each connection (TCP_INFO and the socket queues).")
        try client.send("unread bytes", push: true)
        call("client.send(\"unread bytes\")  (left unread for now: the server's amtUnreadData shows them)")
        try waitForUnread(server, 12)
        printStatus(server: try server.status(), client: try client.status())
        _ = try server.receive(timeout: .seconds(5))

        step(
            8, "Half-close",
            "close() means \"no more data from this side\"; it returns when the FIN is acknowledged. "
                + "The other direction stays open.")
        try client.close()
        call("client.close() → returned; client state: \(try client.status().state)")
        do {
            _ = try server.receive(timeout: .seconds(5))
        } catch let error as MacTCPError {
            call("server.receive → throws \(error.name) (\(error.code)): the client has closed and everything was read")
        }
        expect("server", .closing)
        try server.send("The server can still answer.")
        call("server.send(\"The server can still answer.\")")
        expect("client", .dataArrival)
        show(try client.receive(timeout: .seconds(5)), "client")

        step(9, "Abort", "abort() resets the connection at once; both ASRs get .terminate with a reason.")
        try server.abort()
        call("server.abort()")
        expect("server", .terminate)
        expect("client", .terminate)
        do {
            _ = try client.receive(timeout: .seconds(5))
        } catch let error as MacTCPError {
            call("client.receive → throws \(error.name) (\(error.code))")
        }
        call("server state after abort: \(try server.status().state); the stream can be opened again")

        step(10, "Release", "release() frees the streams; later calls throw invalidStreamPtr.")
        server.release()
        client.release()
        call("server.release(), client.release()")
        say("\nThat was the whole life of a MacTCP connection. Run `swift test` to see every rule checked.")
    }

    private func printStatus(server: TCPStatus, client: TCPStatus) {
        let rows: [(String, (TCPStatus) -> String)] = [
            ("connectionState", { "\($0.connectionState) (\($0.state))" }),
            ("localHost:localPort", { "\(IPv4.string($0.localHost)):\($0.localPort)" }),
            ("remoteHost:remotePort", { "\(IPv4.string($0.remoteHost)):\($0.remotePort)" }),
            ("sendWindow", { "\($0.sendWindow)" }),
            ("rcvWindow", { "\($0.rcvWindow)" }),
            ("amtUnackedData", { "\($0.amtUnackedData)" }),
            ("amtUnreadData", { "\($0.amtUnreadData)" }),
            ("sendUnacked / sendNext", { "\($0.sendUnacked) / \($0.sendNext)" }),
            ("rcvNext", { "\($0.rcvNext)" }),
            ("congestionWindow", { "\($0.congestionWindow)" }),
            ("srtt (ms)", { "\($0.srtt)" }),
            ("sendMaxSegSize", { "\($0.sendMaxSegSize)" }),
            ("ulpTimeoutValue (s)", { "\($0.ulpTimeoutValue) (action \($0.ulpAction))" }),
        ]
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
        }
        say("   " + pad("field", 24) + pad("server", 26) + "client")
        for (name, value) in rows {
            say("   " + pad(name, 24) + pad(value(server), 26) + value(client))
        }
        say("   (sequence numbers are relative: Linux does not expose the absolute ones)")
    }
}
