// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc

/// A child process for the tests: started with `posix_spawnp`, its standard input a pipe, its
/// output and errors in files, and every wait for it bounded by a deadline.
///
/// Foundation's `Process` is not used: its `waitUntilExit` was seen to miss a child's exit
/// (the child a zombie, the wait endless), and its pipes are inherited by whatever other
/// child is spawned meanwhile, so an end of file can come late. Here the parent reaps with
/// `waitpid(pid, WNOHANG)` itself, and output goes to files, which no other process keeps open.
final class ChildProcess: @unchecked Sendable {
    // @unchecked: `input` and `status` are touched only by the test that owns the child
    // (one thread at a time); `pid` and the paths never change.

    /// The child's process ID.
    let pid: pid_t
    private var input: Int32
    private var status: Int32?
    private let outputPath: String
    private let errorPath: String
    private let removesOutput: Bool

    /// Starts `executable` (looked up in `PATH` when it has no slash) with `arguments`.
    /// - Parameter outputPath: a file for the standard output instead of a temporary one.
    init(_ executable: String, _ arguments: [String], outputPath: String? = nil) throws {
        let directory = NSTemporaryDirectory()
        let unique = "mactcp-child-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
        self.outputPath = outputPath ?? directory + "/" + unique + ".out"
        self.errorPath = directory + "/" + unique + ".err"
        removesOutput = outputPath == nil
        var ends: [Int32] = [-1, -1]
        guard Self.pipe2(&ends, O_CLOEXEC) == 0 else { throw PeerError(description: "pipe2: \(String(cString: strerror(errno)))") }
        let out = open(self.outputPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let err = open(errorPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer {
            Glibc.close(ends[0])
            Glibc.close(out)
            Glibc.close(err)
        }
        guard out >= 0, err >= 0 else {
            Glibc.close(ends[1])
            throw PeerError(description: "cannot create the child's output files in \(directory)")
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the copies, so exactly these three are inherited.
        posix_spawn_file_actions_adddup2(&actions, ends[0], 0)
        posix_spawn_file_actions_adddup2(&actions, out, 1)
        posix_spawn_file_actions_adddup2(&actions, err, 2)
        // The child starts with no signal blocked and every signal at its default: the test's
        // threads (Dispatch's workers) block signals, and a mask is inherited through exec.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var child: pid_t = 0
        let result = posix_spawnp(&child, executable, &actions, &attributes, argv, environ)
        guard result == 0 else {
            Glibc.close(ends[1])
            throw PeerError(description: "cannot start \(executable): \(String(cString: strerror(result)))")
        }
        pid = child
        input = ends[1]
    }

    /// pipe2(2), a GNU extension that Glibc's module does not export (a pipe made close-on-exec
    /// at once, so that no child spawned meanwhile by another test inherits it).
    private static let pipe2: @convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32 = {
        let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "pipe2")!
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<Int32>, Int32) -> Int32).self)
    }()

    /// Writes `text` to the child's standard input.
    func write(_ text: String) {
        write(bytes: Array(text.utf8))
    }

    /// Writes `bytes` to the child's standard input (blocking while its pipe is full).
    func write(bytes: [UInt8]) {
        guard input >= 0 else { return }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { Glibc.write(input, $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }

    /// Closes the child's standard input: it reads end of file.
    func endInput() {
        if input >= 0 { Glibc.close(input) }
        input = -1
    }

    /// Sends `signal` to the child (nothing once it has been reaped).
    func send(_ signal: Int32) {
        if status == nil { kill(pid, signal) }
    }

    /// Whether the child is still running (reaps it when it has ended).
    var isRunning: Bool { reap(block: false) == nil }

    /// Waits for the child to end: its exit status, or 128 + the signal that ended it.
    /// At the deadline the child is killed and the wait throws.
    @discardableResult
    func wait(timeout: Double = 20) throws -> Int32 {
        let deadline = Clock.now + timeout
        while true {
            if let status = reap(block: false) { return status }
            if Clock.now > deadline {
                kill(pid, SIGKILL)
                _ = reap(block: true)
                throw PeerError(description: "child \(pid) did not end in \(timeout) s; killed")
            }
            usleep(2000)
        }
    }

    /// What the child wrote to its standard output so far (empty when it went to a file the
    /// caller named: that file is the caller's to read, and may be large).
    var output: String { removesOutput ? Self.contents(of: outputPath) : "" }

    /// What the child wrote to its standard error so far.
    var errors: String { Self.contents(of: errorPath) }

    /// A file's text, read with plain system calls (it is polled often; Foundation's reader
    /// was seen by LeakSanitizer to leave its buffers behind).
    private static func contents(of path: String) -> String {
        let file = open(path, O_RDONLY | O_CLOEXEC)
        guard file >= 0 else { return "" }
        defer { Glibc.close(file) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(file, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func reap(block: Bool) -> Int32? {
        if let status { return status }
        var raw: Int32 = 0
        var result: pid_t
        repeat {
            result = waitpid(pid, &raw, block ? 0 : WNOHANG)
        } while result < 0 && errno == EINTR
        guard result == pid else { return nil }
        let signal = raw & 0x7F
        status = signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
        return status
    }

    deinit {
        if status == nil {
            kill(pid, SIGKILL)
            _ = reap(block: true)
        }
        if input >= 0 { Glibc.close(input) }
        if removesOutput { unlink(outputPath) }
        unlink(errorPath)
    }
}

/// Runs `/bin/sh -ec script` to its end (within `timeout` seconds) and gives back its standard
/// output; throws with its errors when it fails.
@discardableResult
func shell(_ script: String, timeout: Double = 30) throws -> String {
    let child = try ChildProcess("/bin/sh", ["-ec", script])
    child.endInput()
    let status = try child.wait(timeout: timeout)
    guard status == 0 else {
        throw PeerError(description: "`\(script)` failed (\(status)): \(child.errors)\(child.output)")
    }
    return child.output
}

extension ChildProcess {
    /// Waits for the child's `PORT n` line on standard output (a whole line: output comes in
    /// pieces) and returns n.
    func announcedPort(timeout: Double = 10) throws -> UInt16 {
        var port: UInt16?
        try waitUntil(timeout: timeout, "the child's PORT line") {
            let lines = output.split(separator: "\n", omittingEmptySubsequences: false).dropLast()
            port = lines.first { $0.hasPrefix("PORT ") }.flatMap { UInt16($0.dropFirst(5).trimmingCharacters(in: .whitespaces)) }
            return port != nil
        }
        guard let port else { throw PeerError(description: "no PORT line") }
        return port
    }
}
