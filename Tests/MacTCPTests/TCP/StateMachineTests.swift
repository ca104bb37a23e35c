// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import MacTCP
import Testing

/// What the spec says one stream of a pair is, as far as the outcome of each call goes.
enum ModelState: Equatable, CustomStringConvertible {
    /// Never opened, or after its own `abort()`: no connection.
    case idle
    /// A passive open waits for a client.
    case listening
    /// A connection: whether each side has closed, and what waits to be read here.
    case connected(weClosed: Bool, peerClosed: Bool, unread: Int)
    /// The peer reset the connection; `unread` bytes had arrived before (the kernel may still
    /// give them).
    case broken(unread: Int)
    /// After `release()`.
    case released

    var description: String {
        switch self {
        case .idle: "idle"
        case .listening: "listening"
        case .connected(let weClosed, let peerClosed, let unread):
            "connected(weClosed: \(weClosed), peerClosed: \(peerClosed), unread: \(unread))"
        case .broken(let unread): "broken(unread: \(unread))"
        case .released: "released"
        }
    }
}

/// One random call sequence over a pair of streams, checked call by call against the model.
/// Gives back nil, or what went wrong (with the sequence so far).
struct StateMachineRun {
    var generator: SeededGenerator
    var streams: [TCPStream] = []
    var states: [ModelState] = []
    var log: [String] = []
    let listenerPort: UInt16

    init(seed: UInt64, listenerPort: UInt16) {
        generator = SeededGenerator(seed: seed)
        self.listenerPort = listenerPort
    }

    private mutating func random(_ range: ClosedRange<Int>) -> Int { Int.random(in: range, using: &generator) }

    /// The outcome of one call: success with some value, or a MacTCP error.
    enum Outcome: Equatable {
        case ok(Int)
        case error(MacTCPError)
    }

    private func outcome(_ body: () throws -> Int) -> Outcome {
        do {
            return .ok(try body())
        } catch let error as MacTCPError {
            return .error(error)
        } catch {
            return .error(.invalidStreamPtr)  // never: every failure is a MacTCPError
        }
    }

    /// Sets up the pair: both connected (most runs), or one stream listening, or one idle.
    mutating func start() throws -> String? {
        switch random(0...9) {
        case 0:
            var stream = try TCPStream()
            try stream.passiveOpen(port: 0, timeout: .seconds(30))
            while stream.getSockName().port == listenerPort {
                // The system may choose the pairs' port again (no socket holds it between
                // sequences); the connects to it must find nobody waiting.
                let again = try TCPStream()
                try again.passiveOpen(port: 0, timeout: .seconds(30))
                stream.release()
                stream = again
            }
            streams = [stream, try TCPStream()]
            states = [.listening, .idle]
            log.append("start: listening + idle")
        case 1:
            streams = [try TCPStream(), try TCPStream()]
            states = [.idle, .idle]
            log.append("start: idle + idle")
        default:
            let server = try TCPStream()
            try server.passiveOpen(port: listenerPort, timeout: .seconds(10))
            let client = try TCPStream()
            try client.activeOpen(host: IPv4.loopback, remotePort: listenerPort, timeout: .seconds(10))
            try server.wait()
            streams = [client, server]
            states = [.connected(weClosed: false, peerClosed: false, unread: 0), .connected(weClosed: false, peerClosed: false, unread: 0)]
            log.append("start: connected pair")
        }
        return nil
    }

    /// Makes `steps` random calls; returns a description of the first divergence from the model.
    mutating func run(steps: Int) -> String? {
        for _ in 0..<steps {
            if let failure = step() { return failure + "\n  after: " + log.joined(separator: "; ") }
        }
        for stream in streams { stream.release() }
        return nil
    }

    private mutating func step() -> String? {
        let side = random(0...1)
        let other = 1 - side
        let stream = streams[side]
        let state = states[side]
        switch random(0...13) {
        case 0, 1, 2:  // send
            let count = random(1...2000)
            if case .connected(_, _, let unread) = states[other], unread + count > 32_768 { return nil }
            let urgent = random(0...5) == 0
            log.append("\(side).send(\(count)\(urgent ? ", urgent" : ""))")
            let result = outcome {
                try stream.send([UInt8](repeating: 7, count: count), urgent: urgent)
                return count
            }
            switch state {
            case .idle, .listening: return expect(result, .error(.connectionDoesntExist))
            case .released: return expect(result, .error(.invalidStreamPtr))
            case .broken: return expect(result, .error(.connectionTerminated))
            case .connected(let weClosed, _, _):
                if weClosed { return expect(result, .error(.connectionClosing)) }
                if let failure = expect(result, .ok(count)) { return failure }
                if case .connected(let w, let p, let unread) = states[other] {
                    states[other] = .connected(weClosed: w, peerClosed: p, unread: unread + count)
                }
            }
        case 3, 4, 5:  // receive
            let maxLength = random(1...4096)
            // Either form: an array, or (TCPRcv's own way) the caller's buffer.
            let intoBuffer = random(0...1) == 0
            log.append("\(side).receive\(intoBuffer ? "(into:" : "(max:") \(maxLength))")
            func receive(_ timeout: Duration) throws -> Int {
                if intoBuffer {
                    var buffer = [UInt8](repeating: 0, count: maxLength)
                    return try buffer.withUnsafeMutableBytes { try stream.receive(into: $0, timeout: timeout).count }
                }
                return try stream.receive(timeout: timeout, maxLength: maxLength).data.count
            }
            switch state {
            case .idle, .listening:
                return expect(outcome { try receive(.milliseconds(1)) }, .error(.connectionDoesntExist))
            case .released:
                return expect(outcome { try receive(.milliseconds(1)) }, .error(.invalidStreamPtr))
            case .broken(let unread):
                let result = outcome { try receive(.seconds(5)) }
                if case .ok(let count) = result, count >= 1, count <= min(unread, maxLength) {
                    states[side] = .broken(unread: unread - count)
                    return nil
                }
                if result == .error(.connectionTerminated) {
                    states[side] = .broken(unread: 0)
                    return nil
                }
                return "receive on a broken connection with \(unread) bytes unread gave \(result)"
            case .connected(let weClosed, let peerClosed, let unread):
                if unread == 0 {
                    if peerClosed {
                        return expect(outcome { try receive(.seconds(5)) }, .error(.connectionClosing))
                    }
                    if random(0...3) != 0 { return nil }  // a 1 ms wait for nothing, now and then
                    return expect(outcome { try receive(.milliseconds(1)) }, .error(.commandTimeout))
                }
                let result = outcome { try receive(.seconds(5)) }
                guard case .ok(let count) = result, count >= 1, count <= min(unread, maxLength) else {
                    return "receive with \(unread) bytes unread (max \(maxLength)) gave \(result)"
                }
                states[side] = .connected(weClosed: weClosed, peerClosed: peerClosed, unread: unread - count)
            }
        case 6:  // close
            log.append("\(side).close()")
            let result = outcome {
                try stream.close()
                return 0
            }
            switch state {
            case .idle, .listening: return expect(result, .error(.connectionDoesntExist))
            case .released: return expect(result, .error(.invalidStreamPtr))
            case .broken: return expect(result, .error(.connectionTerminated))
            case .connected(let weClosed, let peerClosed, let unread):
                if weClosed { return expect(result, .error(.connectionClosing)) }
                if let failure = expect(result, .ok(0)) { return failure }
                states[side] = .connected(weClosed: true, peerClosed: peerClosed, unread: unread)
                if case .connected(let w, _, let u) = states[other] {
                    states[other] = .connected(weClosed: w, peerClosed: true, unread: u)
                }
            }
        case 7:  // abort
            log.append("\(side).abort()")
            let result = outcome {
                try stream.abort()
                return 0
            }
            switch state {
            case .idle: return expect(result, .error(.connectionDoesntExist))
            case .released: return expect(result, .error(.invalidStreamPtr))
            case .listening:
                if let failure = expect(result, .ok(0)) { return failure }
                states[side] = .idle
                // The cancelled passive open is reported once by wait.
                return expect(
                    outcome {
                        try stream.wait()
                        return 0
                    }, .error(.connectionTerminated))
            case .broken:
                // Nothing is left to reset. A success leaves the stream idle; a refusal leaves
                // it as it was.
                guard result == .ok(0) || result == .error(.connectionDoesntExist) || result == .error(.connectionTerminated) else {
                    return "abort on a broken connection gave \(result)"
                }
                log.append("(\(result))")
                if result == .ok(0) { states[side] = .idle }
            case .connected(let weClosed, let peerClosed, _):
                let finished = weClosed && peerClosed
                guard result == .ok(0) || (finished && result == .error(.connectionDoesntExist)) else {
                    return "abort on \(state) gave \(result)"
                }
                log.append("(\(result))")
                // After a graceful end there may be nothing left to abort: a refusal leaves
                // the stream as it was.
                if result != .ok(0) { return nil }
                states[side] = .idle
                if case .connected(_, _, let unread) = states[other], !finished {
                    states[other] = .broken(unread: unread)
                }
            }
        case 8:  // status
            log.append("\(side).status()")
            let result = outcome { Int(try stream.status().connectionState) }
            switch state {
            case .released: return expect(result, .error(.invalidStreamPtr))
            case .idle: return expect(result, .ok(0))
            case .listening: return expect(result, .ok(2))
            case .broken, .connected:
                guard case .ok(let code) = result, code != 2, code <= 20 else { return "status on \(state) gave \(result)" }
            }
        case 9:  // release
            log.append("\(side).release()")
            stream.release()
            if case .connected(let weClosed, let peerClosed, _) = state, !(weClosed && peerClosed),
                case .connected(_, _, let unread) = states[other]
            {
                states[other] = .broken(unread: unread)
            }
            states[side] = .released
            return expect(outcome { stream.isDone ? 1 : 0 }, .ok(1))
        case 10:  // activeOpen: to a port where nobody waits, or in a state that forbids it
            switch state {
            case .connected(let weClosed, let peerClosed, _) where weClosed || peerClosed:
                return nil  // a connection that is ending: either answer could be right
            default:
                break
            }
            log.append("\(side).activeOpen()")
            let result = outcome {
                try stream.activeOpen(host: IPv4.loopback, remotePort: listenerPort, timeout: .seconds(1))
                return 0
            }
            switch state {
            case .listening, .connected: return expect(result, .error(.connectionExists))
            case .released: return expect(result, .error(.invalidStreamPtr))
            case .idle, .broken:
                // Allowed (a connection that ended may be opened again): refused, and no
                // connection afterwards.
                states[side] = .idle
                return expect(result, .error(.openFailed))
            }
        case 11:  // passiveOpen in a state that forbids it, or after release
            switch state {
            case .listening, .released, .connected(false, false, _):
                log.append("\(side).passiveOpen()")
                let result = outcome {
                    try stream.passiveOpen(port: 0, timeout: .seconds(1))
                    return 0
                }
                return expect(result, .error(state == .released ? .invalidStreamPtr : .connectionExists))
            default:
                return nil
            }
        case 12:  // isDone and wait
            log.append("\(side).isDone/wait")
            if let failure = expect(outcome { stream.isDone ? 1 : 0 }, .ok(state == .listening ? 0 : 1)) { return failure }
            if state == .listening { return nil }
            return expect(
                outcome {
                    try stream.wait()
                    return 0
                }, state == .released ? .error(.invalidStreamPtr) : .ok(0))
        default:  // getSockName
            log.append("\(side).getSockName()")
            let name = stream.getSockName()
            if state == .released && (name.host != 0 || name.port != 0) { return "getSockName after release gave \(name)" }
            if state == .listening && name.port == 0 { return "getSockName while listening gave port 0" }
        }
        return nil
    }

    private func expect(_ result: Outcome, _ expected: Outcome) -> String? {
        result == expected ? nil : "expected \(expected), got \(result)"
    }
}

/// A free port below the system's ephemeral range (which `connect` and port 0 draw from).
func portOutsideEphemeralRange() throws -> UInt16 {
    let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? "32768"
    let low = Int(range.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first ?? "") ?? 32768
    for _ in 0..<100 {
        let candidate = UInt16(clamping: Int.random(in: max(1024, low - 8000)..<max(1025, low)))
        let probe = try TCPStream()
        defer { probe.release() }
        if (try? probe.passiveOpen(port: candidate)) != nil { return candidate }
    }
    throw PeerError(description: "no free port below \(low)")
}

/// The file where an exit-test child of process `parent` leaves its report. (Observing the
/// child's standard error instead keeps one of Swift Testing's few cooperative threads busy
/// reading it for the child's whole life, and starves the async suites.)
func reportPath(parent: pid_t) -> String {
    NSTemporaryDirectory() + "/mactcp-state-machine-\(parent).log"
}

/// Writes a line to standard error and to the report file for the parent process.
func report(_ line: String) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
    let file = open(reportPath(parent: getppid()), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    if file >= 0 {
        _ = bytes.withUnsafeBytes { write(file, $0.baseAddress, $0.count) }
        close(file)
    }
}

/// Runs `sequences` random call sequences of up to 12 calls each, from `seed`, on `workers`
/// threads at once (each with its own pairs and port; most of the time goes to waiting for
/// the peer to acknowledge a FIN, which Linux may delay); exits 1, after writing the seed,
/// the sequence and the divergence to standard error, at the first failure.
func stateMachineInChild(sequences: Int, seed: UInt64, workers: Int = 8) throws {
    exitAfter(seconds: 280)
    setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
    // The pairs meet on ports the system never chooses by itself: a connect to an ephemeral
    // port where nobody listens can pick that same port as its own and connect to itself
    // (TCP's simultaneous open), where the model expects a refusal.
    var ports: Set<UInt16> = []
    while ports.count < workers { ports.insert(try portOutsideEphemeralRange()) }
    let started = Clock.now
    let runs = ports.enumerated().map { worker, port in
        Background { () throws -> Int in
            var master = SeededGenerator(seed: seed &+ UInt64(worker))
            let share = sequences / workers + (worker < sequences % workers ? 1 : 0)
            for index in 0..<share {
                let sequenceSeed = master.next()
                var run = StateMachineRun(seed: sequenceSeed, listenerPort: port)
                do {
                    _ = try run.start()
                } catch {
                    report(
                        "state machine: worker \(worker) sequence \(index) (sequence seed \(sequenceSeed), run seed \(seed)) could not start: \(error)"
                    )
                    exit(2)
                }
                if let failure = run.run(steps: 12) {
                    report(
                        "state machine: worker \(worker) sequence \(index) of \(share) diverged (sequence seed \(sequenceSeed), run seed \(seed)): \(failure)"
                    )
                    exit(1)
                }
            }
            return share
        }
    }
    var total = 0
    for run in runs { total += try run.value(timeout: 270).get() }
    report("state machine: \(total) sequences agreed with the model in \(String(format: "%.1f", Clock.now - started)) s (run seed \(seed))")
}

@Suite("Randomized state machine", .timeLimit(.minutes(5)))
struct StateMachineTests {
    @Test("100,000 random call sequences over pairs of streams agree with the spec's states")
    func randomSequences() async throws {
        let path = reportPath(parent: getpid())
        unlink(path)
        defer { unlink(path) }
        let result = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success) { () async -> Void in
                let seed = UInt64.random(in: 0...UInt64.max)
                report("state machine: run seed \(seed)")
                do {
                    try stateMachineInChild(sequences: 100_000, seed: seed)
                } catch {
                    exit(3)
                }
            }
        }
        // The run seed, and on failure the diverging sequence with its seed.
        let output = (try? String(contentsOfFile: path, encoding: .utf8)) ?? "(no report)"
        print(output)
        if result?.exitStatus != .exitCode(0) { Issue.record("\(output)") }
    }
}
