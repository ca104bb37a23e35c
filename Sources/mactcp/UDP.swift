#if canImport(Glibc)
import Glibc
#endif

import ArgumentParser
import MacTCP

/// `mactcp udp send|listen`.
struct UDP: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send or receive UDP datagrams.",
        subcommands: [UDPSend.self, UDPListen.self]
    )
}

struct UDPSend: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "send", abstract: "Send one datagram (the text, or standard input).")

    @Argument(help: "The destination IPv4 address (or localhost).") var host: Host
    @Argument(help: "The destination port, 1…65535.") var port: UInt16
    @Argument(help: "The text to send; standard input when left out.") var text: String?
    @Option(help: "Seconds to wait for an ICMP error after sending.") var wait: Double = 0.2

    func validate() throws {
        if port == 0 { throw ValidationError("the port must be 1…65535") }
    }

    func run() throws {
        var data: [UInt8]
        if let text {
            data = Array(text.utf8)
        } else {
            data = []
            while let line = readLine(strippingNewline: false) { data += Array(line.utf8) }
        }
        do {
            let stream = try UDPStream()
            defer { stream.release() }
            try stream.write(host: host.address, port: port, data)
            let deadline = nowSeconds() + wait
            while nowSeconds() < deadline && stream.lastICMPReport == nil { usleep(5000) }
            if let report = stream.lastICMPReport {
                complain("ICMP type \(report.icmpType) code \(report.icmpCode) from \(IPv4.string(report.reportingHost))"
                    + " about \(IPv4.string(report.remoteHost)):\(report.remotePort)")
                throw ExitCode(ExitStatus.unavailable)
            }
        } catch let code as ExitCode {
            throw code
        } catch {
            throw failure(for: error, doing: "udp send")
        }
    }
}

struct UDPListen: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "listen", abstract: "Print the datagrams that arrive on a port.")

    @Option(help: "The local port (0: any, printed on standard error).") var port: UInt16 = 0
    @Option(help: "Exit after this many datagrams (0: never).") var count: Int = 0
    @Option(help: "Seconds to wait for each datagram (0: without limit).") var timeout: Double = 0
    @Flag(help: "Print JSON lines.") var json = false

    func run() throws {
        do {
            let stream = try UDPStream(port: port)
            defer { stream.release() }
            complain("listening on UDP port \(stream.port)")
            var received = 0
            while count == 0 || received < count {
                let datagram = try stream.read(timeout: timeout)
                received += 1
                let text = String(decoding: datagram.data, as: UTF8.self)
                if json {
                    let escaped = text.unicodeScalars.map { $0.value < 32 || $0 == "\"" || $0 == "\\" ? String(format4($0.value)) : String($0) }.joined()
                    print("{\"from\":\"\(IPv4.string(datagram.remoteHost)):\(datagram.remotePort)\",\"bytes\":\(datagram.data.count),\"text\":\"\(escaped)\"}")
                } else {
                    print("\(IPv4.string(datagram.remoteHost)):\(datagram.remotePort) \(datagram.data.count) bytes: \(text)")
                }
            }
        } catch {
            throw failure(for: error, doing: "udp listen")
        }
    }
}

/// A JSON \u escape.
func format4(_ value: UInt32) -> String {
    let hex = String(value, radix: 16)
    return "\\u" + String(repeating: "0", count: max(0, 4 - hex.count)) + hex
}
