// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser
import Dispatch
import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `mactcp connect HOST PORT`: an active open, standard input to the peer, the peer to
/// standard output.
struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open a connection; send standard input, print what arrives.",
        discussion: """
            Standard input is sent exactly as it is, byte for byte. When standard input is a \
            terminal (or with --lines), it is read as lines instead: each line is sent pushed, \
            and a line starting with '!' sends the rest of the line as urgent data (its newline \
            follows as normal data). End of input (Ctrl-D) half-closes the connection: what the \
            peer still sends keeps arriving. The tool exits when both directions are done: \
            input has ended and the peer has closed (with --exit-on-close, as soon as the peer \
            has closed). SIGINT (Ctrl-C), SIGTERM and SIGHUP abort the connection (the peer \
            gets a reset) and exit 74. Received data goes to standard output as it is (on a \
            terminal, urgent data is highlighted); events and errors go to standard error.

            \(ExitStatus.help)
            """
    )

    @Argument(help: "The remote host: a name, or an IPv4 or IPv6 address.") var host: Host
    @Argument(help: "The remote port, 1…65535.") var port: RemotePort
    @Option(name: .customLong("local-port"), parsing: .unconditional, help: "The local port, 0…65535 (0: any).")
    var localPort = LocalPort(0)
    @Option(parsing: .unconditional, help: "Seconds to wait for the connection (0: up to the ULP timeout).")
    var timeout = Seconds(30)
    @Flag(inversion: .prefixedNo, help: "Read standard input as lines, '!' lines urgent (default: only on a terminal).")
    var lines: Bool?
    @Flag(help: "Exit as soon as the peer has closed, without waiting for the end of input.")
    var exitOnClose = false
    @Flag(help: "Print the stream's events on standard error.") var events = false
    @Flag(help: "Print events and messages on standard error as JSON lines.") var json = false
    @Flag(help: "Publish the connection's status for `mactcp watch`.") var watch = false

    func run() throws {
        Console.json.store(json, ordering: .relaxed)
        Interruption.install()
        let target = host.literal.map { endpointText($0, port.value) } ?? "\(host.text) port \(port.value)"
        let stream: TCPStream
        do {
            stream = try TCPStream()
            if events || json {
                let json = json
                stream.asr = { event, detail in Console.line(describe(event, detail, json: json, stream: "connect")) }
            }
            Interruption.guarding(stream)
            try stream.activeOpen(localPort: localPort.value, host: host.text, remotePort: port.value, timeout: timeout.value)
        } catch {
            throw failure(for: error, doing: "connect to \(target)")
        }
        let peer = host.literal == nil ? " (\(stream.remoteAddress))" : ""
        complain("connected to \(target)\(peer) from port \(stream.getSockName().port)")
        if watch { WatchBoard.publish(stream, name: "connect \(target)") }
        let printer = Printer()
        let finished = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        let exitOnClose = exitOnClose
        spawnThread {
            defer { finished.signal() }
            while true {
                do {
                    printer.show(try stream.receive(timeout: .zero), from: "connect")
                } catch MacTCPError.connectionClosing {
                    complain("the peer has closed the connection")
                    if exitOnClose {
                        do {
                            try stream.close()
                        } catch {
                            ProcessExit.now(failure(for: error, doing: "close").rawValue)
                        }
                        ProcessExit.now(ExitStatus.success)
                    }
                    return
                } catch {
                    outcome.set(failure(for: error, doing: "receive"))
                    return
                }
            }
        }
        do {
            if lines ?? (isatty(0) == 1) {
                try sendLines(stream)
            } else {
                try sendBytes(stream)
            }
        } catch let code as ExitCode {
            throw code
        } catch {
            throw failure(for: error, doing: "send")
        }
        do {
            try stream.close()
        } catch {
            throw failure(for: error, doing: "close")
        }
        finished.wait()
        Interruption.release(stream)
        stream.release()
        if let failure = outcome.value { throw failure }
    }

    /// Standard input as it is, in the chunks `read` returns, each pushed.
    private func sendBytes(_ stream: TCPStream) throws {
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = Console.read(0, into: &buffer)
            if count < 0 {
                complain("mactcp: cannot read standard input: \(String(cString: strerror(errno)))")
                try? stream.abort()
                throw ExitCode(ExitStatus.broken)
            }
            if count == 0 { return }
            try buffer.withUnsafeBytes { try stream.send(UnsafeRawBufferPointer(rebasing: $0[0..<count])) }
        }
    }

    /// Standard input as lines: a line that starts with '!' is urgent data (without the
    /// '!'), its newline sent after it as normal data.
    private func sendLines(_ stream: TCPStream) throws {
        while let line = readLine(strippingNewline: false) {
            if line.hasPrefix("!") {
                let body = line.dropFirst()
                let urgent = body.hasSuffix("\n") ? body.dropLast() : body
                if !urgent.isEmpty { try stream.send(String(urgent), urgent: true) }
                if body.hasSuffix("\n") { try stream.send("\n") }
            } else {
                try stream.send(line)
            }
        }
    }
}

/// The first failure of a background task.
final class Outcome: Sendable {
    private let storage = Mutex<ExitCode?>(nil)
    var value: ExitCode? { storage.withLock { $0 } }
    func set(_ code: ExitCode) { storage.withLock { $0 = $0 ?? code } }
}

extension String {
    func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
