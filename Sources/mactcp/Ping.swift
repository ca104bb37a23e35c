// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser
import Dispatch
import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send ICMP echo requests (MacTCP's IPCtlEchoICMP) and print the replies, as ping does.",
        discussion: """
            Each request waits for its reply (up to --timeout) before the next is sent, --interval \
            after the previous one. Without privilege it needs the process's group within \
            net.ipv4.ping_group_range; as root it uses a raw socket. Ctrl-C ends it with the \
            statistics.

            Exit status: 0 when a reply came; 75 when none came in time; 69 when ICMP errors \
            answered instead; 77 when ICMP sockets are not allowed; 64 bad arguments; 68 no such \
            host name.
            """
    )

    @Argument(help: "The host: a name, or an IPv4 or IPv6 address.") var host: Host
    @Option(name: .shortAndLong, parsing: .unconditional, help: "Stop after this many requests (0: until interrupted).")
    var count = Count(0)
    @Option(name: .shortAndLong, parsing: .unconditional, help: "Seconds between requests.")
    var interval = Seconds(1)
    @Option(name: .shortAndLong, parsing: .unconditional, help: "Bytes of data in each request (56: 64 with the ICMP header).")
    var size = Count(56)
    @Option(name: .shortAndLong, parsing: .unconditional, help: "The requests' time to live (hop limit), 1…255 (0: the system's).")
    var ttl = Count(0)
    @Option(name: [.customShort("W"), .long], parsing: .unconditional, help: "Seconds to wait for each reply.")
    var timeout = Seconds(1)
    @Flag(help: "Print each reply and the statistics as JSON lines.") var json = false

    func run() throws {
        Console.json.store(json, ordering: .relaxed)
        let address: IPAddress
        do {
            address = try host.literal ?? Self.resolve(host.text)
        } catch {
            throw failure(for: error, doing: "ping \(host.text)")
        }
        let data = (0..<size.value).map { UInt8(truncatingIfNeeded: 0x10 + $0) }
        let statistics = Statistics(target: host.text)
        let json = json
        if !json { print("PING \(host.text) (\(address)) \(size.value) data bytes") }
        Interruption.whenInterrupted { statistics.finish(json: json) }
        var sent = 0
        while count.value == 0 || sent < count.value {
            let start = nowSeconds()
            sent += 1
            statistics.sent()
            do {
                let reply = try MacTCPDriver.echoICMP(
                    to: address, data: data, timeout: .milliseconds(Int(timeout.value * 1000)), timeToLive: ttl.value)
                statistics.received(reply)
                // icmp_seq counts this run's requests from 1, as ping's does; the library's own
                // sequence number (one counter for the process) is in the JSON as wire_seq.
                let time = threeDecimals(milliseconds(reply.roundTrip))
                if json {
                    Console.data(
                        Array(
                            ("{\"seq\":\(sent),\"wire_seq\":\(reply.sequence),\"bytes\":\(reply.echoedData.count + 8),"
                                + "\"from\":\(jsonString("\(reply.from)")),\"ttl\":\(reply.timeToLive),\"time_ms\":\(time)}\n").utf8))
                } else {
                    print(
                        "\(reply.echoedData.count + 8) bytes from \(reply.from): icmp_seq=\(sent) ttl=\(reply.timeToLive) time=\(time) ms")
                }
            } catch let error as MacTCPError where error == .icmpEchoTimeoutErr {
                statistics.lost()
            } catch let error as MacTCPError where error.icmp != nil {
                statistics.failed()
                if json {
                    Console.line(
                        "{\"error\":\(jsonString(error.name)),\"code\":\(error.code),\"message\":\(jsonString(error.detail ?? error.meaning))}"
                    )
                } else {
                    print(error.detail ?? error.meaning)
                }
            } catch {
                throw failure(for: error, doing: "ping \(host.text)")
            }
            if count.value != 0 && sent >= count.value { break }
            let left = interval.value - (nowSeconds() - start)
            if left > 0 { usleep(UInt32(min(left, 4000) * 1_000_000)) }
        }
        let status = statistics.finish(json: json)
        if status != ExitStatus.success { throw ExitCode(status) }
    }

    /// The first of a name's addresses (the resolver's order).
    private static func resolve(_ name: String) throws -> IPAddress {
        let found = Mutex<Result<[IPAddress], any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let result = await Result { try await DNR.shared.addresses(for: name) }
            found.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return try found.withLock { $0! }.get()[0]
    }
}

/// A number with three decimals, as ping prints milliseconds.
private func threeDecimals(_ value: Double) -> String {
    let thousandths = Int((value * 1000).rounded())
    let fraction = String(thousandths % 1000)
    return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
}

/// Milliseconds in a duration.
private func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
}

extension Result where Failure == any Error {
    fileprivate init(catching body: () async throws -> Success) async {
        do {
            self = .success(try await body())
        } catch {
            self = .failure(error)
        }
    }
}

/// The counts and round trips of a ping run, and its summary as iputils' ping prints it.
private final class Statistics: Sendable {
    private struct Counts {
        var sent = 0
        var received = 0
        var errors = 0
        var times: [Double] = []
        let start = nowSeconds()
    }

    private let counts = Mutex(Counts())
    private let target: String

    init(target: String) {
        self.target = target
    }

    func sent() { counts.withLock { $0.sent += 1 } }
    func received(_ reply: ICMPEchoReply) {
        counts.withLock {
            $0.received += 1
            $0.times.append(milliseconds(reply.roundTrip))
        }
    }
    func lost() {}
    func failed() { counts.withLock { $0.errors += 1 } }

    /// Prints the summary and gives the exit status: 0 with a reply, 69 when only errors
    /// came, 75 when nothing came.
    func finish(json: Bool) -> Int32 {
        let counts = counts.withLock { $0 }
        let loss = counts.sent == 0 ? 0 : Int((Double(counts.sent - counts.received) * 100 / Double(counts.sent)).rounded(.down))
        let elapsed = Int(((nowSeconds() - counts.start) * 1000).rounded())
        let minimum = counts.times.min() ?? 0
        let maximum = counts.times.max() ?? 0
        let average = counts.times.isEmpty ? 0 : counts.times.reduce(0, +) / Double(counts.times.count)
        let squares = counts.times.isEmpty ? 0 : counts.times.map { $0 * $0 }.reduce(0, +) / Double(counts.times.count)
        let deviation = (max(0, squares - average * average)).squareRoot()
        let f = threeDecimals
        if json {
            Console.data(
                Array(
                    ("{\"transmitted\":\(counts.sent),\"received\":\(counts.received),\"errors\":\(counts.errors),\"loss_percent\":\(loss),"
                        + "\"time_ms\":\(elapsed),\"min_ms\":\(f(minimum)),\"avg_ms\":\(f(average)),\"max_ms\":\(f(maximum)),"
                        + "\"mdev_ms\":\(f(deviation))}\n").utf8))
        } else {
            print("")
            print("--- \(target) ping statistics ---")
            print(
                "\(counts.sent) packets transmitted, \(counts.received) received, "
                    + (counts.errors > 0 ? "+\(counts.errors) errors, " : "") + "\(loss)% packet loss, time \(elapsed)ms")
            if !counts.times.isEmpty {
                print("rtt min/avg/max/mdev = \(f(minimum))/\(f(average))/\(f(maximum))/\(f(deviation)) ms")
            }
        }
        fflush(nil)
        if counts.received > 0 { return ExitStatus.success }
        return counts.errors > 0 ? ExitStatus.unavailable : ExitStatus.timeout
    }
}
