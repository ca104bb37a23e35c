// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

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
            urgent data marked; with --echo it is sent back (urgent data as urgent data). \
            As with MacTCP, a client that arrives while no stream of the pool waits is not \
            served: the kernel may complete its connection, which is then reset (or it is \
            refused outright). Size --pool for the clients you expect at once. The port stays \
            this server's while it runs, even while every stream is busy. A passive open that \
            fails is retried with a growing pause (0.1 s to 5 s). Idle or vanished clients \
            hold a stream until --idle-timeout aborts them, or (with --keepalive) until their \
            keepalive probes go unanswered for the ULP timeout (2 minutes). With --backlog N \
            the port is kept listening instead (TCPListeningPort): clients who arrive while \
            every stream is busy wait in the kernel's queue of N and are served in order. \
            SIGINT (Ctrl-C), SIGTERM and SIGHUP abort the connections being served.

            \(ExitStatus.help)
            """
    )

    @Option(parsing: .unconditional, help: "The local port, 0…65535 (0: any free port, printed on standard error).")
    var port = LocalPort(0)
    @Option(help: "Accept only this peer: ADDRESS, ADDRESS:PORT or [IPV6]:PORT.") var from: Peer?
    @Option(parsing: .unconditional, help: "Seconds to wait for a client (0: without limit).")
    var timeout = Seconds(0)
    @Flag(help: "Send back what arrives.") var echo = false
    @Flag(help: "Serve one connection, then exit.") var once = false
    @Option(parsing: .unconditional, help: "How many streams wait at once without --once, 1…1024.")
    var pool = Count(4)
    @Flag(help: "Print the streams' events on standard error.") var events = false
    @Flag(help: "Print events and messages on standard error as JSON lines.") var json = false
    @Flag(help: "Publish the (first) connection's status for `mactcp watch`.") var watch = false
    @Option(
        name: .customLong("idle-timeout"), parsing: .unconditional,
        help: "Abort a connection after this many seconds without data from the client (0: never).")
    var idleTimeout = Seconds(0)
    @Flag(help: "TCP keepalive probes on idle connections (after 60 s, then every 10 s), so that a vanished client's ends.")
    var keepalive = false
    @Option(
        parsing: .unconditional,
        help: "Keep the port listening with a queue of this many clients, 1…65535, so that none is refused while the pool is busy.")
    var backlog: Count?

    func validate() throws {
        if !(1...1024).contains(pool.value) { throw ValidationError("--pool must be 1…1024, not \(pool.value)") }
        if let backlog, !(1...65_535).contains(backlog.value) {
            throw ValidationError("--backlog must be 1…65535, not \(backlog.value)")
        }
    }

    func run() throws {
        Console.json.store(json, ordering: .relaxed)
        Interruption.install()
        var port = port.value
        let counter = Atomic(1)
        let first: TCPStream
        let ended = DispatchSemaphore(value: 0)
        // Kept for the whole run: the process's end closes it.
        var kept: TCPListeningPort?
        defer { withExtendedLifetime(kept) {} }
        do {
            if let backlog {
                kept = try TCPListeningPort(port: port, backlog: backlog.value)
                port = kept?.port ?? port
            }
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
            for _ in 1..<pool.value {
                armed.append(try open(port: actualPort, name: "connection \(counter.add(1, ordering: .relaxed).oldValue)"))
            }
        } catch {
            throw failure(for: error, doing: "listen on port \(actualPort)")
        }
        complain("listening on port \(actualPort)")
        let this = self
        for initial in armed {
            spawnThread {
                // One stream serves connection after connection: between two it still holds
                // the port, so no other user can bind it while the whole pool is busy.
                let stream = initial
                var waiting = true
                var pause = 0.1
                while true {
                    do {
                        if !waiting {
                            names.withLock { $0[ObjectIdentifier(stream)] = "connection \(counter.add(1, ordering: .relaxed).oldValue)" }
                            try this.passiveOpen(stream)
                            waiting = true
                        }
                        pause = 0.1
                        try? this.serve(stream)
                        waiting = false
                    } catch {
                        // This stream of the pool cannot wait now (the port is taken, no
                        // descriptors are left): say so, and try again later.
                        _ = failure(for: error, doing: "listen (retrying in \(pause) s)")
                        usleep(UInt32(pause * 1e6))
                        pause = min(5, pause * 2)
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
        let key = ObjectIdentifier(stream)
        names.withLock { $0[key] = name }
        if events || json {
            let json = json
            stream.asr = { event, detail in
                let name = names.withLock { $0[key] } ?? "connection"
                Console.line(describe(event, detail, json: json, stream: name))
                if event == .terminate { ended?.signal() }
            }
        }
        do {
            try passiveOpen(stream, port: port)
        } catch {
            stream.release()
            _ = names.withLock { $0.removeValue(forKey: key) }
            throw error
        }
        return stream
    }

    /// The passive open of every stream of the pool (0: the port `stream` already holds).
    private func passiveOpen(_ stream: TCPStream, port: UInt16 = 0) throws {
        let port = port == 0 ? stream.getSockName().port : port
        try stream.passiveOpen(
            port: port, remoteAddress: from?.address ?? .v4(0), remotePort: from?.port ?? 0, timeout: timeout.value,
            options: TCPOpenOptions(keepalive: keepalive ? TCPKeepalive() : nil))
    }

    private func serve(_ stream: TCPStream) throws {
        let name = names.withLock { $0[ObjectIdentifier(stream)] } ?? "connection"
        do {
            try stream.wait()
        } catch {
            throw failure(for: error, doing: "listen")
        }
        Interruption.guarding(stream)
        defer { Interruption.release(stream) }
        let status = try stream.status()
        complain("[\(name)] connected from \(endpointText(status.remoteAddress, status.remotePort))")
        if watch { WatchBoard.publish(stream, name: "listen \(name)") }
        let printer = Printer()
        while true {
            do {
                let received = try stream.receive(timeout: .seconds(idleTimeout.value))
                printer.show(received, from: name)
                if echo { try stream.send(received.data, urgent: received.urgent || received.mark) }
            } catch MacTCPError.connectionClosing {
                complain("[\(name)] the peer has closed the connection")
                try? stream.close()
                return
            } catch MacTCPError.commandTimeout {
                let seconds = idleTimeout.defaultValueDescription
                complain("[\(name)] nothing from the peer for \(seconds) s (--idle-timeout): connection aborted")
                try? stream.abort()
                return
            } catch {
                throw failure(for: error, doing: "[\(name)] receive")
            }
        }
    }
}

/// The name each waiting stream was given when it was opened.
private let names = Mutex<[ObjectIdentifier: String]>([:])
