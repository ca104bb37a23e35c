import ArgumentParser
import MacTCP

#if canImport(Glibc)
import Glibc
#endif

/// A progress line on standard error, when standard error is a terminal.
struct Progress {
    let total: Int?
    let start = nowSeconds()
    private var last = 0.0
    private let enabled = isatty(2) == 1

    init(total: Int?) { self.total = total }

    mutating func update(_ done: Int, final: Bool = false) {
        guard enabled else { return }
        let now = nowSeconds()
        guard final || now - last >= 0.2 else { return }
        last = now
        let rate = Double(done) / max(now - start, 1e-6)
        var text = "\r\(done) bytes, \(Int(rate / 1e6)) MB/s"
        if let total, total > 0 {
            let fraction = Double(done) / Double(total)
            let width = 30
            let filled = Int(fraction * Double(width))
            text += " [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "]"
            text += " \(Int(fraction * 100))%"
            if rate > 0 && done < total { text += ", ETA \(Int(Double(total - done) / rate)) s" }
        }
        let bytes = Array((text + (final ? "\n" : "\u{1B}[K")).utf8)
        _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
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
        discussion: "The last send waits for the peer's acknowledgement; then the connection is half-closed.\n\n" + ExitStatus.help
    )

    @Argument(help: "The remote IPv4 address (or localhost).") var host: Host
    @Argument(help: "The remote port, 1…65535.") var port: UInt16
    @Argument(help: "The file to send, or - for standard input.") var file: String
    @Option(help: "Seconds to wait for the connection.") var timeout: Double = 30

    func validate() throws {
        if port == 0 { throw ValidationError("the port must be 1…65535") }
    }

    func run() throws {
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
            try stream.activeOpen(host: host.address, remotePort: port, timeout: timeout)
        } catch {
            throw failure(for: error, doing: "connect to \(IPv4.string(host.address)):\(port)")
        }
        defer { stream.release() }
        var progress = Progress(total: size)
        var sent = 0
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        var pending: [UInt8]? = nil
        do {
            while true {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 {
                    complain("mactcp: cannot read \(file): \(String(cString: strerror(errno)))")
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
        discussion: ExitStatus.help
    )

    @Option(help: "The local port (0: any free port, printed on standard error).") var port: UInt16 = 0
    @Option(help: "Seconds to wait for the client (0: without limit).") var timeout: Double = 0
    @Option(help: "The expected size, for the progress bar.") var size: Int?

    func run() throws {
        let stream: TCPStream
        do {
            stream = try TCPStream()
            try stream.passiveOpen(port: port, timeout: timeout)
            complain("listening on port \(stream.getSockName().port)")
            try stream.wait()
        } catch {
            throw failure(for: error, doing: "receive")
        }
        defer { stream.release() }
        var progress = Progress(total: size)
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
        complain("received \(received) bytes")
    }
}
