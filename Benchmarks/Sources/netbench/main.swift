// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// netbench: the loopback benchmark protocol (bench/PROTOCOL.md of the benchmark harness)
// written with MacTCP's public API only, as a user would write it: servers passive-open a
// pool of streams on the port (one stream per connection, re-arming as connections arrive),
// clients active-open, send, receive until connectionClosing, and close.
// Plus `asr-latency`: the time from a peer's write to the stream's .dataArrival event.
import Dispatch
import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#else
#error("Linux only")
#endif

// MARK: - Helpers

func nowNs() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Writes to standard error (descriptor 2).
func complain(_ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

func emit(_ line: String) {
    print(line)
    fflush(nil)
}

func fail(_ what: String) -> Never {
    complain("netbench-mactcp: \(what)\n")
    exit(1)
}

func fixed(_ value: Double, _ digits: Int = 2) -> String {
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded()
    let whole = UInt64(abs(rounded)) / UInt64(scale)
    var fraction = String(UInt64(abs(rounded)) % UInt64(scale))
    while fraction.count < digits { fraction = "0" + fraction }
    return (rounded < 0 ? "-" : "") + String(whole) + (digits > 0 ? "." + fraction : "")
}

/// Nearest-rank percentile of ascending samples.
func percentile(_ sorted: [UInt64], _ p: Double) -> UInt64 {
    let rank = Int((p / 100 * Double(sorted.count)).rounded(.up))
    return sorted[max(0, min(sorted.count - 1, rank - 1))]
}

func loopback(_ host: String) -> UInt32 {
    guard let address = IPv4.address(host), address >> 24 == 127 else {
        complain("netbench-mactcp: refusing non-loopback address \(host)\n")
        exit(2)
    }
    return address
}

func portNumber(_ text: String) -> UInt16 {
    guard let value = UInt16(text) else { fail("bad port \(text)") }
    return value
}

/// Runs `body` on a new thread.
///
/// A deliberate copy of the library's `LibraryThread.start` (without its signal mask and
/// thread name): this package is a separate one, so the library's `package` symbols are out of
/// its reach, and starting threads is not the library's public API.
func spawn(_ body: @escaping @Sendable () -> Void) {
    // Sendable in fact: its only property is an immutable @Sendable closure; the class exists
    // to cross pthread_create's untyped context pointer.
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    pthread_create(&thread, nil, { context in
        Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context)
    pthread_detach(thread)
}

/// How netbench receives: into arrays (`receive(timeout:maxLength:)`, the default) or, with
/// `NETBENCH_RECEIVE=into` in its environment, into a buffer of its own
/// (`receive(into:timeout:)`, MacTCP's TCPRcv: nothing allocated per receive).
let receivesIntoBuffer = getenv("NETBENCH_RECEIVE").map { String(cString: $0) == "into" } ?? false

/// Where a connection's receives go: a buffer made once per connection (into-buffer mode),
/// or nothing (arrays).
struct Receiver: ~Copyable {
    let stream: TCPStream
    private let buffer: UnsafeMutableRawBufferPointer

    init(_ stream: TCPStream, bufferSize: Int = 65536) {
        self.stream = stream
        buffer = receivesIntoBuffer
            ? .allocate(byteCount: bufferSize, alignment: 16) : UnsafeMutableRawBufferPointer(start: nil, count: 0)
    }

    deinit { buffer.deallocate() }

    /// Receives once, up to `maxLength` bytes, and hands them to `body` (valid during the call).
    func receive<R>(timeout: Duration = .zero, maxLength: Int = 65536, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        if receivesIntoBuffer {
            let room = UnsafeMutableRawBufferPointer(rebasing: buffer[..<min(maxLength, buffer.count)])
            let got = try stream.receive(into: room, timeout: timeout)
            return try body(UnsafeRawBufferPointer(rebasing: room[..<got.count]))
        }
        let received = try stream.receive(timeout: timeout, maxLength: maxLength)
        return try received.data.withUnsafeBytes(body)
    }

    /// Receives until `count` bytes came.
    func receiveExactly(_ count: Int) throws {
        var received = 0
        while received < count {
            received += try receive(maxLength: count - received) { $0.count }
        }
    }

    /// Reads until the peer closes (connectionClosing); returns the bytes.
    func receiveToEnd() throws -> [UInt8] {
        var data: [UInt8] = []
        while true {
            do {
                try receive { data.append(contentsOf: $0) }
            } catch MacTCPError.connectionClosing {
                return data
            }
        }
    }
}

/// A new stream passive-opened on `port`, tried again every millisecond until it is (between
/// a server's re-arms the port may still be closing).
func waitingStream(on port: UInt16) -> TCPStream {
    while true {
        do {
            let stream = try TCPStream()
            try stream.passiveOpen(port: port)
            return stream
        } catch {
            complain("netbench-mactcp: server: \(error)\n")
            usleep(1000)
        }
    }
}

/// A blocking server: `threads` threads, each keeping `depth` streams passive-opened on the
/// port, oldest first: it waits for its oldest stream's connection, passive-opens a new
/// stream first, then serves the connection (MacTCP refuses clients while no stream waits,
/// so a server re-arms before it serves). Prints READY once every thread's streams wait.
func serve(_ portText: String, threads: Int, depth: Int, _ handle: @escaping @Sendable (TCPStream) throws -> Void) -> Never {
    let portNumber = portNumber(portText)
    let ready = Atomic<Int>(0)
    @Sendable func open() -> TCPStream { waitingStream(on: portNumber) }
    for _ in 0..<threads {
        spawn {
            var waiting = (0..<depth).map { _ in open() }
            if ready.add(1, ordering: .relaxed).newValue == threads { emit("READY") }
            while true {
                let current = waiting.removeFirst()
                do {
                    try current.wait()
                } catch {
                    complain("netbench-mactcp: server: \(error)\n")
                }
                waiting.append(open())
                do {
                    try handle(current)
                } catch {
                    complain("netbench-mactcp: server: \(error)\n")
                }
                current.release()
            }
        }
    }
    while true { sleep(1000) }
}

// MARK: - Workloads

func bulkServer(_ port: String) -> Never {
    serve(port, threads: 2, depth: 1) { stream in
        let receiver = Receiver(stream)
        var count = 0
        while true {
            do {
                count += try receiver.receive { $0.count }
            } catch MacTCPError.connectionClosing {
                break
            }
        }
        try stream.send("\(count)\n")
        try stream.close()
    }
}

func bulkClient(_ host: String, _ port: String, _ bytesText: String, _ chunkText: String) -> Int32 {
    guard let total = Int(bytesText), let chunk = Int(chunkText), chunk > 0 else { fail("bad arguments") }
    do {
        let stream = try TCPStream()
        try stream.activeOpen(host: loopback(host), remotePort: portNumber(port), timeout: .seconds(10))
        let buffer = [UInt8](repeating: 0x61, count: chunk)
        let start = nowNs()
        var sent = 0
        try buffer.withUnsafeBytes { bytes in
            while sent < total {
                let piece = min(chunk, total - sent)
                try stream.send(UnsafeRawBufferPointer(rebasing: bytes[0..<piece]))
                sent += piece
            }
        }
        try stream.close()
        let reply = String(decoding: try Receiver(stream).receiveToEnd(), as: UTF8.self)
        let seconds = Double(nowNs() - start) / 1e9
        stream.release()
        guard Int(reply.split(separator: "\n").first ?? "") == total else { fail("bad reply \(reply)") }
        emit("RESULT bytes=\(total) seconds=\(fixed(seconds, 6)) mb_per_s=\(fixed(Double(total) / seconds / 1e6))")
        return 0
    } catch {
        fail("bulk-client: \(error)")
    }
}

func pingpongServer(_ port: String) -> Never {
    serve(port, threads: 2, depth: 1) { stream in
        let receiver = Receiver(stream)
        while true {
            do {
                try receiver.receive { try stream.send($0) }
            } catch MacTCPError.connectionClosing {
                try stream.close()
                return
            }
        }
    }
}

func pingpongClient(_ host: String, _ port: String, _ sizeText: String, _ countText: String, _ warmupText: String) -> Int32 {
    guard let size = Int(sizeText), let count = Int(countText), let warmup = Int(warmupText), size > 0 else {
        fail("bad arguments")
    }
    do {
        let stream = try TCPStream()
        try stream.activeOpen(host: loopback(host), remotePort: portNumber(port), timeout: .seconds(10))
        let message = [UInt8](repeating: 0x70, count: size)
        let receiver = Receiver(stream)
        var samples: [UInt64] = []
        samples.reserveCapacity(count)
        for index in 0..<(warmup + count) {
            let start = nowNs()
            try stream.send(message)
            try receiver.receiveExactly(size)
            if index >= warmup { samples.append(nowNs() - start) }
        }
        try stream.close()
        _ = try receiver.receiveToEnd()
        stream.release()
        samples.sort()
        let mean = Double(samples.reduce(0, +)) / Double(samples.count)
        emit("RESULT count=\(count) size=\(size) p50_us=\(fixed(Double(percentile(samples, 50)) / 1e3)) "
            + "p99_us=\(fixed(Double(percentile(samples, 99)) / 1e3)) mean_us=\(fixed(mean / 1e3)) "
            + "min_us=\(fixed(Double(samples.first!) / 1e3)) max_us=\(fixed(Double(samples.last!) / 1e3))")
        return 0
    } catch {
        fail("pingpong-client: \(error)")
    }
}

func connrateServer(_ port: String) -> Never {
    serve(port, threads: 1, depth: 4) { stream in
        let receiver = Receiver(stream, bufferSize: 1024)
        try receiver.receive(timeout: .seconds(10), maxLength: 1) { try stream.send($0) }
        try stream.close()
        _ = try receiver.receiveToEnd()  // the client's FIN: the connection ends gracefully
    }
}

func connrateClient(_ host: String, _ port: String, _ countText: String) -> Int32 {
    guard let count = Int(countText) else { fail("bad arguments") }
    do {
        let address = loopback(host)
        let remote = portNumber(port)
        let stream = try TCPStream()  // MacTCP style: one stream, reopened for each connection
        let receiver = Receiver(stream, bufferSize: 1024)
        var samples: [UInt64] = []
        samples.reserveCapacity(count)
        let start = nowNs()
        for _ in 0..<count {
            let begin = nowNs()
            try stream.activeOpen(host: address, remotePort: remote, timeout: .seconds(10))
            try stream.send([0x63])
            try receiver.receiveExactly(1)
            _ = try receiver.receiveToEnd()
            try stream.close()
            samples.append(nowNs() - begin)
        }
        let seconds = Double(nowNs() - start) / 1e9
        stream.release()
        samples.sort()
        emit("RESULT conns=\(count) seconds=\(fixed(seconds, 6)) conns_per_s=\(fixed(Double(count) / seconds, 1)) "
            + "p50_us=\(fixed(Double(percentile(samples, 50)) / 1e3)) p99_us=\(fixed(Double(percentile(samples, 99)) / 1e3))")
        return 0
    } catch {
        fail("connrate-client: \(error)")
    }
}

/// The scale server: streams driven by their ASRs, no thread or task per connection. A
/// pool of streams waits on the port; each one that gets its connection is replaced.
final class ScaleServer: Sendable {
    let port: UInt16
    let streams = Mutex<[ObjectIdentifier: TCPStream]>([:])

    init(port: UInt16) { self.port = port }

    func arm() {
        do {
            let stream = try TCPStream()
            streams.withLock { $0[ObjectIdentifier(stream)] = stream }
            stream.asr = { [weak self, weak stream] event, detail in
                guard let self, let stream else { return }
                self.handle(stream, event, detail)
            }
            try stream.passiveOpen(port: port)
        } catch {
            fail("scale-server: \(error)")
        }
    }

    func handle(_ stream: TCPStream, _ event: TCPEvent, _ detail: Int) {
        switch event {
        case .passiveOpenDone:
            arm()
            if detail != 0 { drop(stream) }
        case .dataArrival:
            if let received = try? stream.receive(timeout: .milliseconds(1), maxLength: 65536) {
                try? stream.send(received.data)
            }
        case .closing:
            try? stream.close()
        case .terminate:
            drop(stream)
        default:
            break
        }
    }

    func drop(_ stream: TCPStream) {
        stream.release()
        _ = streams.withLock { $0.removeValue(forKey: ObjectIdentifier(stream)) }
    }
}

func scaleServer(_ portText: String) -> Never {
    let server = ScaleServer(port: portNumber(portText))
    // MacTCP has no listen backlog: waiting streams are the backlog. The protocol asks for a
    // backlog of 4,096, and a client that connects while no stream waits is refused (or reset
    // if already queued), so 4,096 streams wait; each that gets its connection is replaced
    // from its ASR. (With 1,024, about one run in 13 lost a connection: 5,000 clients connect
    // in 0.1 s, faster than the ASRs re-armed.)
    for _ in 0..<4096 { server.arm() }
    emit("READY")
    while true { sleep(1000) }
}

func scaleClient(_ host: String, _ port: String, _ connsText: String, _ sizeText: String, _ holdText: String) -> Int32 {
    guard let conns = Int(connsText), let size = Int(sizeText), let hold = Int(holdText) else { fail("bad arguments") }
    do {
        let address = loopback(host)
        let remote = portNumber(port)
        var streams: [TCPStream] = []
        streams.reserveCapacity(conns)
        let start = nowNs()
        for _ in 0..<conns {
            let stream = try TCPStream()
            var attempts = 0
            while true {
                do {
                    try stream.activeOpen(host: address, remotePort: remote, timeout: .seconds(10))
                    break
                } catch MacTCPError.openFailed where attempts < 100 {
                    attempts += 1  // between re-arms nothing listens (MacTCP's rule): try again
                    usleep(1000)
                }
            }
            streams.append(stream)
        }
        let connected = nowNs()
        emit("CONNECTED")
        usleep(UInt32(hold) * 1000)
        let message = [UInt8](repeating: 0x6D, count: size)
        let begin = nowNs()
        for stream in streams { try stream.send(message) }
        for stream in streams { try Receiver(stream, bufferSize: 1024).receiveExactly(size) }
        let end = nowNs()
        for stream in streams { stream.release() }
        emit("RESULT conns=\(conns) connect_s=\(fixed(Double(connected - start) / 1e9, 6)) msg_s=\(fixed(Double(end - begin) / 1e9, 6))")
        return 0
    } catch {
        fail("scale-client: \(error)")
    }
}

/// The time from a peer's write to the stream's `.dataArrival` ASR call: p50/p99 over
/// COUNT messages.
func asrLatency(_ countText: String) -> Int32 {
    guard let count = Int(countText) else { fail("bad arguments") }
    do {
        let server = try TCPStream()
        try server.passiveOpen()
        let client = try TCPStream()
        try client.activeOpen(host: IPv4.loopback, remotePort: server.getSockName().port, timeout: .seconds(5))
        try server.wait()
        let arrival = Atomic<UInt64>(0)
        server.asr = { event, _ in
            if event == .dataArrival { arrival.store(nowNs(), ordering: .releasing) }
        }
        var samples: [UInt64] = []
        for index in 0..<(count + 100) {
            arrival.store(0, ordering: .relaxed)
            let sent = nowNs()
            try client.send([1])
            var seen: UInt64 = 0
            while seen == 0 { seen = arrival.load(ordering: .acquiring) }
            if index >= 100 { samples.append(seen - sent) }
            _ = try server.receive(timeout: .seconds(5))  // re-arms .dataArrival
        }
        samples.sort()
        emit("RESULT count=\(count) p50_us=\(fixed(Double(percentile(samples, 50)) / 1e3)) p99_us=\(fixed(Double(percentile(samples, 99)) / 1e3))")
        return 0
    } catch {
        fail("asr-latency: \(error)")
    }
}

// MARK: - Command line

let arguments = CommandLine.arguments
await runAsyncWorkload(arguments)
let command = arguments.count > 1 ? arguments[1] : ""
switch (command, arguments.count) {
case ("bulk-server", 3): bulkServer(arguments[2])
case ("bulk-client", 6): exit(bulkClient(arguments[2], arguments[3], arguments[4], arguments[5]))
case ("pingpong-server", 3): pingpongServer(arguments[2])
case ("pingpong-client", 7): exit(pingpongClient(arguments[2], arguments[3], arguments[4], arguments[5], arguments[6]))
case ("connrate-server", 3): connrateServer(arguments[2])
case ("connrate-client", 5): exit(connrateClient(arguments[2], arguments[3], arguments[4]))
case ("scale-server", 3): scaleServer(arguments[2])
case ("scale-client", 7): exit(scaleClient(arguments[2], arguments[3], arguments[4], arguments[5], arguments[6]))
case ("asr-latency", 3): exit(asrLatency(arguments[2]))
default:
    complain("""
        usage: netbench bulk-server PORT | bulk-client HOST PORT BYTES CHUNK
               | pingpong-server PORT | pingpong-client HOST PORT SIZE COUNT WARMUP
               | connrate-server PORT | connrate-client HOST PORT COUNT
               | scale-server PORT | scale-client HOST PORT CONNS SIZE HOLD_MS
               | asr-latency COUNT

        """)
    exit(64)
}
