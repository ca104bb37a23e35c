// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import MacTCP
import Synchronization
import Testing

/// The threads of this process now (/proc/self/status).
func processThreadCount() -> Int {
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let line = status.split(separator: "\n").first { $0.hasPrefix("Threads:") } ?? "Threads: 0"
    return Int(line.split(separator: "\t").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? "0") ?? 0
}

/// An async echo server: a pool of streams passive-opened on one port, each serving one
/// connection (echo until the client closes, then close and release).
func echoServer(streams count: Int, port: UInt16 = 0) async throws -> (port: UInt16, group: Task<Int, any Error>) {
    let first = try TCPStream()
    try first.passiveOpen(port: port)
    let port = first.getSockName().port
    var pool = [first]
    for _ in 1..<count {
        let stream = try TCPStream()
        try stream.passiveOpen(port: port)
        pool.append(stream)
    }
    let streams = pool
    let group = Task {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for stream in streams {
                group.addTask {
                    defer { stream.release() }
                    try await stream.wait()
                    var echoed = 0
                    while true {
                        do {
                            let received = try await stream.receive(timeout: .seconds(20))
                            try await stream.send(received.data)
                            echoed += received.data.count
                        } catch MacTCPError.connectionClosing {
                            try await stream.close()
                            return echoed
                        }
                    }
                }
            }
            return try await group.reduce(0, +)
        }
    }
    return (port, group)
}

@Suite("Async scale", .timeLimit(.minutes(2)))
struct AsyncScaleTests {
    @Test("1,000 async clients against an async echo server in one process, on a few threads")
    func thousandClients() async throws {
        // In a process of its own, so that the count is this workload's alone (the other
        // suites run in parallel and have threads of their own). Measured here: 5 threads
        // before, 6 at the peak, the whole exchange in about 0.2 s.
        _ = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success) {
                exitAfter(seconds: 90)
                let clients = 1000
                let before = processThreadCount()
                let (port, server) = try await echoServer(streams: clients)
                let peak = Mutex(0)
                let sampling = Task {
                    while !Task.isCancelled {
                        let now = processThreadCount()
                        peak.withLock { $0 = max($0, now) }
                        try? await Task.sleep(for: .milliseconds(5))
                    }
                }
                let total = try await withThrowingTaskGroup(of: Int.self) { group in
                    for index in 0..<clients {
                        group.addTask {
                            let stream = try TCPStream()
                            defer { stream.release() }
                            try await stream.activeOpen(host: IPv4.loopback, remotePort: port, timeout: .seconds(20))
                            let message = Array("hello from client \(index)".utf8)
                            try await stream.send(message)
                            var echo: [UInt8] = []
                            while echo.count < message.count {
                                echo += try await stream.receive(timeout: .seconds(20)).data
                            }
                            if echo != message { exit(3) }
                            try await stream.close()
                            do {
                                _ = try await stream.receive(timeout: .seconds(20))
                                exit(4)  // data after the echo
                            } catch MacTCPError.connectionClosing {
                            }
                            return echo.count
                        }
                    }
                    return try await group.reduce(0, +)
                }
                let echoed = try await server.value
                sampling.cancel()
                if total != echoed { exit(5) }
                // Swift's cooperative pool (one thread per core, 2 here) and the reactor, with
                // room for the runtime's own: not one thread per stream.
                if peak.withLock({ $0 }) - before > 8 { exit(6) }
            }
        }
    }
}
