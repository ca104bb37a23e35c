// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser
import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// `mactcp udp send|listen`.
struct UDP: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send or receive UDP datagrams.",
        subcommands: [UDPSend.self, UDPListen.self]
    )
}

struct UDPSend: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "send", abstract: "Send one datagram (the text, or standard input).")

    @Argument(help: "The destination host: a name, or an IPv4 or IPv6 address.") var host: Host
    @Argument(help: "The destination port, 1…65535.") var port: RemotePort
    @Argument(help: "The text to send; standard input (as it is, up to 65,507 bytes; 65,527 to IPv6) when left out.")
    var text: String?
    @Option(parsing: .unconditional, help: "Seconds to wait for an ICMP error after sending.")
    var wait = Seconds(0.2)

    func run() throws {
        var data: [UInt8]
        if let text {
            data = Array(text.utf8)
        } else {
            data = []
            var chunk = [UInt8](repeating: 0, count: 1 << 16)
            while true {
                let count = Console.read(0, into: &chunk)
                if count <= 0 { break }
                data += chunk[0..<count]
            }
        }
        do {
            let stream = try UDPStream()
            defer { stream.release() }
            try stream.write(host: host.text, port: port.value, data)
            let deadline = nowSeconds() + wait.value
            while nowSeconds() < deadline && stream.lastICMPReport == nil { usleep(5000) }
            if let report = stream.lastICMPReport {
                complain("ICMP \(report)")
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

    @Option(parsing: .unconditional, help: "The local port, 0…65535 (0: any, printed on standard error).")
    var port = LocalPort(0)
    @Option(parsing: .unconditional, help: "Exit after this many datagrams (0: never).")
    var count = Count(0)
    @Option(parsing: .unconditional, help: "Seconds to wait for each datagram (0: without limit).")
    var timeout = Seconds(0)
    @Flag(help: "Print JSON lines: the sender, the size, the bytes in base64 and, when they are UTF-8, as text.")
    var json = false

    func run() throws {
        Console.json.store(json, ordering: .relaxed)
        do {
            let stream = try UDPStream(port: port.value)
            defer { stream.release() }
            complain("listening on UDP port \(stream.port)")
            var received = 0
            while count.value == 0 || received < count.value {
                let datagram = try stream.read(timeout: timeout.value)
                received += 1
                let from = endpointText(datagram.remoteAddress, datagram.remotePort)
                if json {
                    // The bytes losslessly in base64; the text too when they are valid UTF-8.
                    let text = String(validating: datagram.data, as: UTF8.self)
                    Console.data(
                        Array(
                            ("{\"from\":\"\(from)\",\"bytes\":\(datagram.data.count),\"base64\":\"\(base64(datagram.data))\""
                                + (text.map { ",\"text\":\(jsonString($0))" } ?? "") + "}\n").utf8))
                } else {
                    // Escaped: a datagram must not drive the terminal that shows it.
                    Console.data(Array("\(from) \(datagram.data.count) bytes: \(Console.escaped(datagram.data))\n".utf8))
                }
            }
        } catch {
            throw failure(for: error, doing: "udp listen")
        }
    }
}
