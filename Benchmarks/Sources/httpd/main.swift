// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// httpd: an HTTP/1.1 responder written the MacTCP way with the public API, for HTTP-style
// load (Benchmarks/http/run.sh loads it with wrk). A pool of streams passive-opens one port;
// each stream serves one connection after another: every `GET` gets a 13-byte body
// (`Hello, world!`); a request with `Connection: close` gets its answer, then the stream
// closes its side, reads to the client's end and serves the next connection.
//
//   httpd --port P --pool N [--backlog B] [--async]
//
// --backlog B keeps the port listening between passive opens (TCPListeningPort, a kernel
// queue of B); without it, MacTCP's rule: while no stream waits, nothing listens. --async
// serves through the async forms, one task per stream, instead of one thread per stream.
// Prints READY once every stream waits; runs until it is sent SIGTERM.
import Foundation
import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#else
#error("Linux only")
#endif

struct Options {
    var port: UInt16 = 0
    var pool = 0
    var backlog: Int?
    var async = false

    init(_ arguments: ArraySlice<String>) {
        var rest = arguments
        while let flag = rest.popFirst() {
            switch flag {
            case "--port": port = UInt16(rest.popFirst() ?? "") ?? 0
            case "--pool": pool = Int(rest.popFirst() ?? "") ?? 0
            case "--backlog": backlog = Int(rest.popFirst() ?? "")
            case "--async": async = true
            default: Self.usage()
            }
        }
        if port == 0 || pool < 1 || backlog.map({ $0 < 1 }) == true { Self.usage() }
    }

    static func usage() -> Never {
        let text = Array("usage: httpd --port P --pool N [--backlog B] [--async]\n".utf8)
        _ = text.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        exit(64)
    }
}

let answer = Array("HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\nHello, world!".utf8)
let closingAnswer = Array(
    "HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nHello, world!".utf8)

/// The requests waiting in what a connection has sent: each complete one (up to its blank
/// line) taken off the front, with whether it asked to close.
struct Requests {
    private var pending: [UInt8] = []

    mutating func append(_ bytes: [UInt8]) { pending += bytes }

    /// The next complete request's `Connection: close`, or nil while none is complete.
    mutating func next() -> Bool? {
        guard pending.count >= 4 else { return nil }
        for index in 3..<pending.count
        where pending[index] == 10 && pending[index - 1] == 13 && pending[index - 2] == 10 && pending[index - 3] == 13 {
            let head = String(decoding: pending[0...index], as: UTF8.self).lowercased()
            pending.removeFirst(index + 1)
            return head.contains("\r\nconnection: close")
        }
        return nil
    }
}

/// Serves one connection on `stream`: its requests in order, until the client closes, or
/// until a `Connection: close` request is answered (then the stream closes its side and reads
/// to the client's end).
func serveBlocking(_ stream: TCPStream) throws {
    var requests = Requests()
    while true {
        let received: TCPReceived
        do {
            received = try stream.receive(timeout: .seconds(30))
        } catch MacTCPError.connectionClosing {
            try stream.close()
            return
        }
        requests.append(received.data)
        while let close = requests.next() {
            try stream.send(close ? closingAnswer : answer)
            if close {
                try stream.close()
                while (try? stream.receive(timeout: .seconds(5))) != nil {}
                return
            }
        }
    }
}

/// ``serveBlocking(_:)`` through the async forms.
func serveAsync(_ stream: TCPStream) async throws {
    var requests = Requests()
    while true {
        let received: TCPReceived
        do {
            received = try await stream.receive(timeout: .seconds(30))
        } catch MacTCPError.connectionClosing {
            try await stream.close()
            return
        }
        requests.append(received.data)
        while let close = requests.next() {
            try await stream.send(close ? closingAnswer : answer)
            if close {
                try await stream.close()
                while (try? await stream.receive(timeout: .seconds(5))) != nil {}
                return
            }
        }
    }
}

let options = Options(CommandLine.arguments.dropFirst())
let listening = try options.backlog.map { try TCPListeningPort(port: options.port, backlog: $0) }
let waiting = Atomic(0)
/// Counts a stream's first passive open; the last one prints READY.
@Sendable func armed() {
    if waiting.add(1, ordering: .relaxed).newValue == options.pool {
        print("READY")
        fflush(nil)
    }
}

for _ in 0..<options.pool {
    let stream = try TCPStream()
    if options.async {
        // Detached: top-level code is the main actor's, whose thread sleeps below.
        Task.detached {
            var first = true
            while true {
                do {
                    try stream.passiveOpen(port: options.port)
                    if first { armed() }
                    first = false
                    try await stream.wait()
                    try await serveAsync(stream)
                } catch {
                    try? stream.abort()
                }
            }
        }
    } else {
        Thread {
            var first = true
            while true {
                do {
                    try stream.passiveOpen(port: options.port)
                    if first { armed() }
                    first = false
                    try stream.wait()
                    try serveBlocking(stream)
                } catch {
                    try? stream.abort()
                }
            }
        }.start()
    }
}
withExtendedLifetime(listening) {
    while true { sleep(3600) }
}
