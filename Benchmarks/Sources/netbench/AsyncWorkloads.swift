// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The pingpong, bulk and connrate workloads through the async forms of the API
// (`NETBENCH_API=async`, the `netbench-async` contender): the same protocol and the same
// shapes as the blocking ones, each connection a task on Swift's global executor, as a
// program written with Swift concurrency would run them.
import MacTCP

#if canImport(Glibc)
import Glibc
#else
#error("Linux only")
#endif

/// Whether the workloads run through the async forms (`NETBENCH_API=async`).
let usesAsyncForms = getenv("NETBENCH_API").map { String(cString: $0) == "async" } ?? false

/// Receives until `count` bytes came.
func receiveExactly(_ stream: TCPStream, _ count: Int) async throws {
    var received = 0
    while received < count {
        received += try await stream.receive(timeout: .zero, maxLength: count - received).data.count
    }
}

/// Reads until the peer closes (connectionClosing); returns how many bytes came.
@discardableResult
func receiveToEnd(_ stream: TCPStream) async throws -> [UInt8] {
    var data: [UInt8] = []
    while true {
        do {
            data += try await stream.receive(timeout: .zero).data
        } catch MacTCPError.connectionClosing {
            return data
        }
    }
}

/// The async server: `tasks` tasks, each keeping `depth` streams passive-opened on the port,
/// oldest first, as `serve` does with threads; each connection is served by a task of its
/// own while the server task waits for the next. Prints READY once every stream waits.
func serveAsync(_ portText: String, tasks: Int, depth: Int, _ handle: @escaping @Sendable (TCPStream) async throws -> Void) async -> Never {
    let port = portNumber(portText)
    @Sendable func open() -> TCPStream { waitingStream(on: port) }
    for _ in 0..<tasks {
        let first = (0..<depth).map { _ in open() }
        Task {
            var waiting = first
            while true {
                let current = waiting.removeFirst()
                do {
                    try await current.wait()
                } catch {
                    complain("netbench-mactcp: server: \(error)\n")
                }
                waiting.append(open())
                Task {
                    do {
                        try await handle(current)
                    } catch {
                        complain("netbench-mactcp: server: \(error)\n")
                    }
                    current.release()
                }
            }
        }
    }
    emit("READY")
    while true { try? await Task.sleep(for: .seconds(1000)) }
}

func bulkServerAsync(_ port: String) async -> Never {
    await serveAsync(port, tasks: 2, depth: 1) { stream in
        var count = 0
        while true {
            do {
                count += try await stream.receive(timeout: .zero).data.count
            } catch MacTCPError.connectionClosing {
                break
            }
        }
        try await stream.send("\(count)\n")
        try await stream.close()
    }
}

func bulkClientAsync(_ host: String, _ port: String, _ bytesText: String, _ chunkText: String) async -> Int32 {
    guard let total = Int(bytesText), let chunk = Int(chunkText), chunk > 0 else { fail("bad arguments") }
    do {
        let stream = try TCPStream()
        try await stream.activeOpen(host: loopback(host), remotePort: portNumber(port), timeout: .seconds(10))
        let buffer = [UInt8](repeating: 0x61, count: chunk)
        let start = nowNs()
        var sent = 0
        while sent < total {
            let piece = min(chunk, total - sent)
            try await stream.send(piece == chunk ? buffer : Array(buffer[0..<piece]))
            sent += piece
        }
        try await stream.close()
        let reply = String(decoding: try await receiveToEnd(stream), as: UTF8.self)
        let seconds = Double(nowNs() - start) / 1e9
        stream.release()
        guard Int(reply.split(separator: "\n").first ?? "") == total else { fail("bad reply \(reply)") }
        emit("RESULT bytes=\(total) seconds=\(fixed(seconds, 6)) mb_per_s=\(fixed(Double(total) / seconds / 1e6))")
        return 0
    } catch {
        fail("bulk-client: \(error)")
    }
}

func pingpongServerAsync(_ port: String) async -> Never {
    await serveAsync(port, tasks: 2, depth: 1) { stream in
        while true {
            do {
                try await stream.send(try await stream.receive(timeout: .zero).data)
            } catch MacTCPError.connectionClosing {
                try await stream.close()
                return
            }
        }
    }
}

func pingpongClientAsync(_ host: String, _ port: String, _ sizeText: String, _ countText: String, _ warmupText: String) async -> Int32 {
    guard let size = Int(sizeText), let count = Int(countText), let warmup = Int(warmupText), size > 0 else {
        fail("bad arguments")
    }
    do {
        let stream = try TCPStream()
        try await stream.activeOpen(host: loopback(host), remotePort: portNumber(port), timeout: .seconds(10))
        let message = [UInt8](repeating: 0x70, count: size)
        var samples: [UInt64] = []
        samples.reserveCapacity(count)
        for index in 0..<(warmup + count) {
            let start = nowNs()
            try await stream.send(message)
            try await receiveExactly(stream, size)
            if index >= warmup { samples.append(nowNs() - start) }
        }
        try await stream.close()
        try await receiveToEnd(stream)
        stream.release()
        samples.sort()
        let mean = Double(samples.reduce(0, +)) / Double(samples.count)
        emit(
            "RESULT count=\(count) size=\(size) p50_us=\(fixed(Double(percentile(samples, 50)) / 1e3)) "
                + "p99_us=\(fixed(Double(percentile(samples, 99)) / 1e3)) mean_us=\(fixed(mean / 1e3)) "
                + "min_us=\(fixed(Double(samples.first!) / 1e3)) max_us=\(fixed(Double(samples.last!) / 1e3))")
        return 0
    } catch {
        fail("pingpong-client: \(error)")
    }
}

func connrateServerAsync(_ port: String) async -> Never {
    await serveAsync(port, tasks: 1, depth: 4) { stream in
        try await stream.send(try await stream.receive(timeout: .seconds(10), maxLength: 1).data)
        try await stream.close()
        try await receiveToEnd(stream)  // the client's FIN: the connection ends gracefully
    }
}

func connrateClientAsync(_ host: String, _ port: String, _ countText: String) async -> Int32 {
    guard let count = Int(countText) else { fail("bad arguments") }
    do {
        let address = loopback(host)
        let remote = portNumber(port)
        let stream = try TCPStream()  // MacTCP style: one stream, reopened for each connection
        var samples: [UInt64] = []
        samples.reserveCapacity(count)
        let start = nowNs()
        for _ in 0..<count {
            let begin = nowNs()
            try await stream.activeOpen(host: address, remotePort: remote, timeout: .seconds(10))
            try await stream.send([0x63])
            try await receiveExactly(stream, 1)
            try await receiveToEnd(stream)
            try await stream.close()
            samples.append(nowNs() - begin)
        }
        let seconds = Double(nowNs() - start) / 1e9
        stream.release()
        samples.sort()
        emit(
            "RESULT conns=\(count) seconds=\(fixed(seconds, 6)) conns_per_s=\(fixed(Double(count) / seconds, 1)) "
                + "p50_us=\(fixed(Double(percentile(samples, 50)) / 1e3)) p99_us=\(fixed(Double(percentile(samples, 99)) / 1e3))")
        return 0
    } catch {
        fail("connrate-client: \(error)")
    }
}

/// Runs an async workload when `NETBENCH_API=async` names one; returns otherwise.
func runAsyncWorkload(_ arguments: [String]) async {
    guard usesAsyncForms else { return }
    let command = arguments.count > 1 ? arguments[1] : ""
    switch (command, arguments.count) {
    case ("bulk-server", 3): await bulkServerAsync(arguments[2])
    case ("bulk-client", 6): exit(await bulkClientAsync(arguments[2], arguments[3], arguments[4], arguments[5]))
    case ("pingpong-server", 3): await pingpongServerAsync(arguments[2])
    case ("pingpong-client", 7): exit(await pingpongClientAsync(arguments[2], arguments[3], arguments[4], arguments[5], arguments[6]))
    case ("connrate-server", 3): await connrateServerAsync(arguments[2])
    case ("connrate-client", 5): exit(await connrateClientAsync(arguments[2], arguments[3], arguments[4]))
    case ("scale-server", _), ("scale-client", _): exit(64)  // no async form: the harness skips it
    default: return  // asr-latency measures the ASR, not a form of the calls
    }
}
