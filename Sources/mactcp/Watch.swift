// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser
import Dispatch
import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where `connect --watch` and `listen --watch` publish their connection's status: a
/// directory of the user's own, so that no other user can read it, plant files or links in
/// it, or show `mactcp watch` anything.
///
/// `$XDG_RUNTIME_DIR/mactcp-watch` when the session has a runtime directory, otherwise
/// `mactcp-watch-UID` in `$TMPDIR` (or `/tmp`). It is created with mode 0700 and used only if
/// `lstat` shows a directory (not a link) owned by this user that nobody else may enter.
/// Status files are written to a new file (`O_EXCL | O_NOFOLLOW`, mode 0600) and renamed into
/// place; the publisher stops and removes its file before the process exits.
enum WatchBoard {
    static var directory: String {
        if let runtime = getenv("XDG_RUNTIME_DIR").map({ String(cString: $0) }), runtime.hasPrefix("/") {
            return runtime + "/mactcp-watch"
        }
        let base = getenv("TMPDIR").map { String(cString: $0) }.flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp"
        return base + "/mactcp-watch-\(getuid())"
    }

    static func path(for pid: Int32) -> String { "\(directory)/\(pid).status" }

    /// The board's directory, created if absent; nil (and why) when it is not this user's
    /// private directory.
    static func privateDirectory(creating: Bool) -> Result<String, WatchBoardError> {
        let directory = directory
        if creating { mkdir(directory, 0o700) }
        var info = stat()
        guard lstat(directory, &info) == 0 else { return .failure(WatchBoardError(directory, "does not exist")) }
        guard info.st_mode & S_IFMT == S_IFDIR else { return .failure(WatchBoardError(directory, "is not a directory")) }
        guard info.st_uid == getuid() else { return .failure(WatchBoardError(directory, "belongs to another user")) }
        guard info.st_mode & 0o077 == 0 else { return .failure(WatchBoardError(directory, "is open to other users")) }
        return .success(directory)
    }

    /// One connection per process is published (the first).
    private static let published = Atomic(false)
    /// Set when the process exits: no status is written after the file is removed.
    private static let stopped = Mutex(false)

    /// Publishes `stream`'s status every 200 ms until the process exits (the file goes with it).
    static func publish(_ stream: TCPStream, name: String) {
        guard !published.exchange(true, ordering: .relaxed) else { return }
        let directory: String
        switch privateDirectory(creating: true) {
        case .success(let value):
            directory = value
        case .failure(let error):
            complain("mactcp: not publishing for `mactcp watch`: \(error)")
            return
        }
        let path = "\(directory)/\(getpid()).status"
        // Before the first status is written: an exit at any moment after it removes the file.
        atexit {
            WatchBoard.stopped.withLock { stopped in
                stopped = true
                unlink(WatchBoard.path(for: getpid()) + ".new")
                unlink(WatchBoard.path(for: getpid()))
            }
        }
        let timer = DispatchSource.makeTimerSource(queue: .global())
        timer.schedule(deadline: .now(), repeating: .milliseconds(200))
        timer.setEventHandler {
            guard let status = try? stream.status() else { return }
            let line =
                "\(name.replacingSpaces) \(status.connectionState) \(status.sendWindow) \(status.rcvWindow) "
                + "\(status.amtUnackedData) \(status.amtUnreadData) \(status.srtt) \(status.congestionWindow) "
                + "\(status.localPort) \(status.remoteAddress) \(status.remotePort)\n"
            stopped.withLock { stopped in
                guard !stopped else { return }
                write(line, to: path)
            }
        }
        watchTimer = timer
        timer.resume()
    }

    /// Replaces the file at `path` with `line`: written to a new file, then renamed.
    private static func write(_ line: String, to path: String) {
        let temporary = path + ".new"
        unlink(temporary)  // left by a process that died while writing (the directory is ours)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return }
        let written = Array(line.utf8).withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        close(fd)
        if written == line.utf8.count {
            rename(temporary, path)
        } else {
            unlink(temporary)
        }
    }
}

/// Why the watch board's directory is not used.
struct WatchBoardError: Error, CustomStringConvertible {
    let directory: String
    let reason: String
    init(_ directory: String, _ reason: String) {
        self.directory = directory
        self.reason = reason
    }
    var description: String { "\(directory) \(reason)" }
}

extension String {
    /// The name with spaces made non-breaking, so that the status line splits on spaces.
    var replacingSpaces: String { String(map { $0 == " " ? "_" : $0 }) }
}

/// Keeps the publishing timer alive; written once from the main thread, read by nothing.
nonisolated(unsafe) var watchTimer: (any DispatchSourceTimer)?

/// `mactcp watch`: a live view of a connection published by `connect --watch` or
/// `listen --watch`.
struct Watch: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show a live view of a connection made with `connect --watch` or `listen --watch`.",
        discussion:
            "Windows, unacknowledged and unread bytes, round-trip time, congestion window and state, refreshed in place, with sparklines of the last seconds. Ctrl-C ends it."
    )

    @Option(help: "The process to watch (default: the newest one publishing).") var pid: Int32?
    @Option(parsing: .unconditional, help: "Refreshes before exiting (0: until the connection's process ends).")
    var frames = Count(0)

    func run() throws {
        if case .failure(let error) = WatchBoard.privateDirectory(creating: false), pid != nil || error.reason != "does not exist" {
            complain("mactcp: watch: \(error)")
            throw ExitCode(ExitStatus.usage)
        }
        var history: [[Int]] = Array(repeating: [], count: 5)
        var shown = 0
        while frames.value == 0 || shown < frames.value {
            guard let path = pid.map(WatchBoard.path(for:)) ?? newest(), let line = read(path) else {
                if shown == 0 {
                    complain("mactcp: nothing to watch: start `mactcp connect --watch …` or `mactcp listen --watch …` first")
                    throw ExitCode(ExitStatus.usage)
                }
                print("\u{1B}[2K\rthe connection's process has ended")
                return
            }
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count >= 11, let values = Optional(fields[1...7].compactMap { Int($0) }), values.count == 7 else {
                usleep(200_000)
                continue
            }
            let tracked = [values[1], values[3], values[4], values[5], values[6]]
            for index in 0..<tracked.count {
                history[index].append(tracked[index])
                if history[index].count > 40 { history[index].removeFirst() }
            }
            render(
                name: Console.escaped(String(fields[0].map { $0 == "_" ? " " : $0 })), values: values, local: fields[8],
                remote: Console.escaped(fields[9].contains(":") ? "[\(fields[9])]:\(fields[10])" : "\(fields[9]):\(fields[10])"),
                history: history)
            shown += 1
            usleep(200_000)
        }
    }

    private func newest() -> String? {
        guard let directory = opendir(WatchBoard.directory) else { return nil }
        defer { closedir(directory) }
        var best: (String, Int)?
        while let entry = readdir(directory) {
            // Read the name in place: an entry is only as long as its name, so copying the
            // whole 256-byte d_name field would read past a short one.
            let offset = MemoryLayout<dirent>.offset(of: \dirent.d_name)!
            let name = String(cString: UnsafeRawPointer(entry).advanced(by: offset).assumingMemoryBound(to: CChar.self))
            guard name.hasSuffix(".status") else { continue }
            let path = WatchBoard.directory + "/" + name
            var info = stat()
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
            if best == nil || info.st_mtim.tv_sec > best!.1 { best = (path, info.st_mtim.tv_sec) }
        }
        return best?.0
    }

    private func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 512)
        let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return count > 0 ? String(decoding: buffer[0..<count], as: UTF8.self).trimmingSuffix("\n") : nil
    }

    private func render(name: String, values: [Int], local: String, remote: String, history: [[Int]]) {
        let state = TCPConnectionState(rawValue: values[0]).map { "\($0)" } ?? "\(values[0])"
        let rows: [(String, String, [Int]?)] = [
            ("state", "\(state) (\(values[0]))", nil),
            ("ports", "local \(local) ↔ \(remote)", nil),
            ("sendWindow", "\(values[1])", history[0]),
            ("rcvWindow", "\(values[2])", nil),
            ("amtUnackedData", "\(values[3])", history[1]),
            ("amtUnreadData", "\(values[4])", history[2]),
            ("srtt ms", "\(values[5])", history[3]),
            ("congestionWindow", "\(values[6])", history[4]),
        ]
        var frame = "\u{1B}[H\u{1B}[2J" + "mactcp watch — \(name)\n\n"
        for (label, value, series) in rows {
            frame += label.padding(18) + value.padding(28) + (series.map(sparkline) ?? "") + "\n"
        }
        frame += "\n(Ctrl-C to stop)\n"
        output(Array(frame.utf8))
    }

    /// The last values as bars scaled from their lowest to their highest, with that scale
    /// written after them.
    private func sparkline(_ values: [Int]) -> String {
        let bars = Array("▁▂▃▄▅▆▇█")
        guard let low = values.min(), let high = values.max() else { return "" }
        let span = Double(high) - Double(low)
        let line = String(
            values.map { value -> Character in
                guard span > 0 else { return bars[0] }
                let level = Int(((Double(value) - Double(low)) / span * Double(bars.count - 1)).rounded())
                return bars[min(bars.count - 1, max(0, level))]
            })
        return line + (low == high ? "  (\(low))" : "  (\(low)…\(high))")
    }
}
