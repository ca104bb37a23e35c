import ArgumentParser
import Dispatch
import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `mactcp connect HOST PORT`: an interactive active open.
struct Connect: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Open a connection; send standard input, print what arrives.",
        discussion: """
            Each line of standard input is sent (pushed). A line starting with '!' sends the \
            rest of the line as urgent data. End of input (Ctrl-D) half-closes the connection: \
            what the peer still sends keeps arriving until it closes too. Ctrl-C aborts the \
            connection (the peer gets a reset). Received data goes to standard output (urgent \
            data marked), events and errors to standard error.

            \(ExitStatus.help)
            """
    )

    @Argument(help: "The remote IPv4 address (or localhost).") var host: Host
    @Argument(help: "The remote port, 1…65535.") var port: UInt16
    @Option(name: .customLong("local-port"), help: "The local port (0: any).") var localPort: UInt16 = 0
    @Option(help: "Seconds to wait for the connection (0: up to the ULP timeout).") var timeout: Double = 30
    @Flag(help: "Print the stream's events on standard error.") var events = false
    @Flag(help: "Print events as JSON lines.") var json = false
    @Flag(help: "Publish the connection's status for `mactcp watch`.") var watch = false

    func validate() throws {
        if port == 0 { throw ValidationError("the port must be 1…65535") }
        if !timeout.isFinite || timeout < 0 { throw ValidationError("--timeout must be a number of seconds ≥ 0") }
    }

    func run() throws {
        let stream: TCPStream
        do {
            stream = try TCPStream()
            if events || json {
                let json = json
                stream.asr = { event, detail in complain(describe(event, detail, json: json, stream: "connect")) }
            }
            try stream.activeOpen(localPort: localPort, host: host.address, remotePort: port, timeout: timeout)
        } catch {
            throw failure(for: error, doing: "connect to \(IPv4.string(host.address)):\(port)")
        }
        complain("connected to \(IPv4.string(host.address)):\(port) from port \(stream.getSockName().port)")
        abortOnInterrupt(stream)
        if watch { WatchBoard.publish(stream, name: "connect \(IPv4.string(host.address)):\(port)") }
        let printer = Printer()
        let finished = DispatchSemaphore(value: 0)
        let outcome = Outcome()
        spawnThread {
            defer { finished.signal() }
            while true {
                do {
                    printer.show(try stream.receive(timeout: .zero), from: "connect")
                } catch MacTCPError.connectionClosing {
                    complain("the peer has closed the connection")
                    return
                } catch {
                    outcome.set(failure(for: error, doing: "receive"))
                    return
                }
            }
        }
        while let line = readLine(strippingNewline: false) {
            do {
                if line.hasPrefix("!") {
                    let urgent = String(line.dropFirst()).trimmingSuffix("\n")
                    if !urgent.isEmpty { try stream.send(urgent, urgent: true) }
                } else {
                    try stream.send(line)
                }
            } catch {
                throw failure(for: error, doing: "send")
            }
        }
        do {
            try stream.close()
        } catch {
            throw failure(for: error, doing: "close")
        }
        finished.wait()
        stream.release()
        if let failure = outcome.value { throw failure }
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

/// Ctrl-C (SIGINT) aborts the connection and exits.
///
/// The handler only writes a byte to a pipe (all a signal handler may safely do); a thread of
/// its own, the one thread that is sure to have SIGINT unblocked, reads it, aborts and exits.
/// This holds whatever signal mask and dispositions the tool was started with.
func abortOnInterrupt(_ stream: TCPStream) {
    var ends: [Int32] = [-1, -1]
    guard pipe(&ends) == 0 else { return }
    _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
    _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
    interruptPipe = ends[1]
    let reader = ends[0]
    spawnThread {
        var only = sigset_t()
        sigemptyset(&only)
        sigaddset(&only, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &only, nil)
        var byte: UInt8 = 0
        while read(reader, &byte, 1) < 0 && errno == EINTR {}
        try? stream.abort()
        complain("aborted")
        exit(ExitStatus.broken)
    }
    var action = sigaction()
    action.__sigaction_handler.sa_handler = { _ in
        var byte: UInt8 = 1
        _ = write(interruptPipe, &byte, 1)
    }
    sigemptyset(&action.sa_mask)
    action.sa_flags = SA_RESTART
    sigaction(SIGINT, &action, nil)
}

/// The pipe's writing end, for the SIGINT handler. Written once, before the handler is
/// installed; only read afterwards.
nonisolated(unsafe) var interruptPipe: Int32 = -1
