import ArgumentParser
import Dispatch
import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `mactcp listen`: passive opens on a port, printing (or echoing) what arrives.
struct Listen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Wait for connections on a port; print (or echo) what arrives.",
        discussion: """
            Without --once, a pool of streams waits on the port, as MacTCP servers did, so \
            several clients can be served at once. Received data goes to standard output, \
            urgent data marked; with --echo it is sent back (urgent data as urgent data).

            \(ExitStatus.help)
            """
    )

    @Option(help: "The local port (0: any free port, printed on standard error).") var port: UInt16 = 0
    @Option(help: "Accept only this peer: HOST or HOST:PORT.") var from: Peer?
    @Option(help: "Seconds to wait for a client (0: without limit).") var timeout: Double = 0
    @Flag(help: "Send back what arrives.") var echo = false
    @Flag(help: "Serve one connection, then exit.") var once = false
    @Option(help: "How many streams wait at once without --once.") var pool: Int = 4
    @Flag(help: "Print the streams' events on standard error.") var events = false
    @Flag(help: "Print events as JSON lines.") var json = false
    @Flag(help: "Publish the (first) connection's status for `mactcp watch`.") var watch = false

    func validate() throws {
        if !timeout.isFinite || timeout < 0 { throw ValidationError("--timeout must be a number of seconds ≥ 0") }
        if pool < 1 || pool > 1024 { throw ValidationError("--pool must be 1…1024") }
    }

    func run() throws {
        let counter = Atomic(1)
        let first: TCPStream
        let ended = DispatchSemaphore(value: 0)
        do {
            first = try open(port: port, name: "connection \(counter.add(1, ordering: .relaxed).oldValue)", ended: once ? ended : nil)
        } catch {
            throw failure(for: error, doing: "listen on port \(port)")
        }
        let actualPort = first.getSockName().port
        if once {
            complain("listening on port \(actualPort)")
            try serve(first)
            // Let the last events (closing, terminate) print before the process exits.
            if events || json { _ = ended.wait(timeout: .now() + 1) }
            return
        }
        // Arm the whole pool before serving, so that clients arriving together find it.
        var armed = [first]
        do {
            for _ in 1..<pool {
                armed.append(try open(port: actualPort, name: "connection \(counter.add(1, ordering: .relaxed).oldValue)"))
            }
        } catch {
            throw failure(for: error, doing: "listen on port \(actualPort)")
        }
        complain("listening on port \(actualPort)")
        let this = self
        for initial in armed {
            spawnThread {
                var stream: TCPStream? = initial
                while true {
                    do {
                        let current = try stream ?? this.open(port: actualPort, name: "connection \(counter.add(1, ordering: .relaxed).oldValue)")
                        stream = nil
                        try? this.serve(current)
                        current.release()
                        _ = names.withLock { $0.removeValue(forKey: ObjectIdentifier(current)) }
                    } catch {
                        _ = failure(for: error, doing: "listen")
                        return
                    }
                }
            }
        }
        while true { sleep(3600) }
    }

    /// A stream waiting on the port, its event routine installed first so that no event is
    /// missed.
    private func open(port: UInt16, name: String, ended: DispatchSemaphore? = nil) throws -> TCPStream {
        let stream = try TCPStream()
        names.withLock { $0[ObjectIdentifier(stream)] = name }
        if events || json {
            let json = json
            stream.asr = { event, detail in
                complain(describe(event, detail, json: json, stream: name))
                if event == .terminate { ended?.signal() }
            }
        }
        try stream.passiveOpen(port: port, remoteHost: from?.host ?? 0, remotePort: from?.port ?? 0, timeout: timeout)
        return stream
    }

    private func serve(_ stream: TCPStream) throws {
        let name = names.withLock { $0[ObjectIdentifier(stream)] } ?? "connection"
        do {
            try stream.wait()
        } catch {
            throw failure(for: error, doing: "listen")
        }
        let status = try stream.status()
        complain("[\(name)] connected from \(IPv4.string(status.remoteHost)):\(status.remotePort)")
        if watch { WatchBoard.publish(stream, name: "listen \(name)") }
        let printer = Printer()
        while true {
            do {
                let received = try stream.receive(timeout: .zero)
                printer.show(received, from: name)
                if echo { try stream.send(received.data, urgent: received.urgent || received.mark) }
            } catch MacTCPError.connectionClosing {
                complain("[\(name)] the peer has closed the connection")
                try? stream.close()
                return
            } catch {
                throw failure(for: error, doing: "[\(name)] receive")
            }
        }
    }
}

/// The name each waiting stream was given when it was opened.
private let names = Mutex<[ObjectIdentifier: String]>([:])
