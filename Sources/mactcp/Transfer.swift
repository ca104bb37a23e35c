// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser
import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A progress line on standard error, when standard error is a terminal.
struct Progress {
    let total: Int?
    let start = nowSeconds()
    private var last = 0.0

    init(total: Int?) { self.total = total }

    mutating func update(_ done: Int, final: Bool = false) {
        guard Console.errorIsTerminal, !Console.json.load(ordering: .relaxed) else { return }
        let now = nowSeconds()
        guard final || now - last >= 0.2 else { return }
        last = now
        Console.progress(Self.line(done: done, total: total, seconds: now - start), final: final)
    }

    /// The progress text: bytes, rate and, when the size is known, a bar, the percentage and
    /// the time left (rounded up); more bytes than expected are said, not drawn.
    static func line(done: Int, total: Int?, seconds: Double) -> String {
        let rate = Double(done) / max(seconds, 1e-6)
        var text = "\(done) bytes, \(Int(rate / 1e6)) MB/s"
        guard let total, total > 0 else { return text }
        if done > total { return text + " (\(done - total) more than the \(total) expected)" }
        let fraction = Double(done) / Double(total)
        let width = 30
        let filled = min(width, max(0, Int(fraction * Double(width))))
        text += " [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
        text += " \(Int(fraction * 100))%"
        if rate > 0 && done < total { text += ", ETA \(Int((Double(total - done) / rate).rounded(.up))) s" }
        return text
    }
}

func nowSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// `mactcp send HOST PORT FILE|-`: a bulk transfer whose exit status says whether every
/// byte was acknowledged.
struct SendFile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a file (or standard input) and exit 0 only when every byte was acknowledged.",
        discussion: """
            The last send waits for the peer's acknowledgement (bounded by the ULP timeout, \
            2 minutes); then the connection is half-closed. SIGINT (Ctrl-C), SIGTERM and SIGHUP \
            abort the connection, so that the receiver sees a reset, never a short file that \
            ends like a whole one.

            \(ExitStatus.help)
            """
    )

    @Argument(help: "The remote host: a name, or an IPv4 or IPv6 address.") var host: Host
    @Argument(help: "The remote port, 1…65535.") var port: RemotePort
    @Argument(help: "The file to send, or - for standard input.") var file: String
    @Option(parsing: .unconditional, help: "Seconds to wait for the connection (0: up to the ULP timeout).")
    var timeout = Seconds(30)

    func run() throws {
        Interruption.install()
        let fd = file == "-" ? 0 : open(file, O_RDONLY)
        guard fd >= 0 else {
            complain("mactcp: cannot open \(file): \(String(cString: strerror(errno)))")
            throw ExitCode(ExitStatus.usage)
        }
        var info = stat()
        let size: Int? = fstat(fd, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG ? Int(info.st_size) : nil
        let stream: TCPStream
        do {
            stream = try TCPStream()
            Interruption.guarding(stream)
            try stream.activeOpen(host: host.text, remotePort: port.value, timeout: timeout.value)
        } catch {
            let target = host.literal.map { endpointText($0, port.value) } ?? "\(host.text) port \(port.value)"
            throw failure(for: error, doing: "connect to \(target)")
        }
        defer {
            Interruption.release(stream)
            stream.release()
        }
        var progress = Progress(total: size)
        var sent = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var pending: [UInt8]? = nil
        do {
            while true {
                let count = Console.read(fd, into: &buffer)
                if count < 0 {
                    complain("mactcp: cannot read \(file): \(String(cString: strerror(errno)))")
                    try? stream.abort()  // the peer must not take what it got for the whole file
                    throw ExitCode(ExitStatus.broken)
                }
                // Keep one chunk back so that the last one can wait for its acknowledgement.
                if let previous = pending {
                    try stream.send(previous, waitForAck: count == 0)
                    sent += previous.count
                    progress.update(sent)
                }
                if count == 0 { break }
                pending = Array(buffer[0..<count])
            }
            try stream.close()
        } catch let code as ExitCode {
            throw code
        } catch {
            throw failure(for: error, doing: "send")
        }
        progress.update(sent, final: true)
        complain("sent \(sent) bytes, all acknowledged")
    }
}

/// `mactcp receive --port N > FILE`: takes one connection and writes what arrives.
struct ReceiveFile: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Wait for one connection and write what arrives to standard output.",
        discussion: """
            Exits 0 when the sender closed the connection in order (and, with --size, exactly \
            that many bytes arrived); a reset, such as an interrupted sender's, exits 74. \
            SIGINT (Ctrl-C), SIGTERM and SIGHUP abort the connection.

            \(ExitStatus.help)
            """
    )

    @Option(parsing: .unconditional, help: "The local port, 0…65535 (0: any free port, printed on standard error).")
    var port = LocalPort(0)
    @Option(parsing: .unconditional, help: "Seconds to wait for the client (0: without limit).")
    var timeout = Seconds(0)
    @Option(parsing: .unconditional, help: "The expected size in bytes: the progress bar's, and any other count exits 74.")
    var size: Count?

    func run() throws {
        Interruption.install()
        let stream: TCPStream
        do {
            stream = try TCPStream()
            Interruption.guarding(stream)
            try stream.passiveOpen(port: port.value, timeout: timeout.value)
            complain("listening on port \(stream.getSockName().port)")
            try stream.wait()
        } catch {
            throw failure(for: error, doing: "receive")
        }
        defer {
            Interruption.release(stream)
            stream.release()
        }
        var progress = Progress(total: size?.value)
        var received = 0
        do {
            while true {
                do {
                    let data = try stream.receive(timeout: .zero).data
                    output(data)
                    received += data.count
                    progress.update(received)
                } catch MacTCPError.connectionClosing {
                    break
                }
            }
            try stream.close()
        } catch {
            throw failure(for: error, doing: "receive")
        }
        progress.update(received, final: true)
        if let expected = size?.value, expected != received {
            complain(
                "mactcp: receive: \(received) bytes arrived, \(expected) were expected"
                    + (received < expected ? " (\(expected - received) missing)" : " (\(received - expected) more)"))
            throw ExitCode(ExitStatus.broken)
        }
        complain("received \(received) bytes")
    }
}
