// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import MacTCP
import Synchronization
import Testing

/// A connected pair: a MacTCP stream and a plain-socket peer.
struct Pair {
    let stream: TCPStream
    let peer: Peer
}

/// A MacTCP stream that actively opened a connection to a plain listening socket (on the
/// loopback of `family`).
func activePair(
    family: LoopbackFamily = .ipv4, events: EventLog? = nil, options: TCPOpenOptions = .init(), receiveBufferSize: Int? = nil
) throws -> Pair {
    let listener = try family.listener()
    let stream = try TCPStream(receiveBufferSize: receiveBufferSize)
    events?.attach(to: stream)
    try stream.activeOpen(address: family.address, remotePort: listener.localPort, timeout: .seconds(5), options: options)
    let peer = try listener.accept()
    return Pair(stream: stream, peer: peer)
}

/// A MacTCP stream that passively opened and took a plain socket's connection (from the
/// loopback of `family`).
func passivePair(family: LoopbackFamily = .ipv4, events: EventLog? = nil, options: TCPOpenOptions = .init()) throws -> Pair {
    let stream = try TCPStream()
    events?.attach(to: stream)
    try stream.passiveOpen(port: 0, timeout: .seconds(5), options: options)
    let port = stream.getSockName().port
    let peer = family == .ipv4 ? try Peer.connect(port: port) : try Peer.connect6(port: port)
    try stream.wait()
    return Pair(stream: stream, peer: peer)
}

/// Asserts that `body` throws the MacTCP error `expected`.
func expectMacTCPError(
    _ expected: MacTCPError,
    sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> Void
) {
    do {
        try body()
        Issue.record("expected \(expected.name) (\(expected.code)), but the call succeeded", sourceLocation: sourceLocation)
    } catch let error as MacTCPError {
        #expect(error == expected, "expected \(expected.name), got \(error)", sourceLocation: sourceLocation)
    } catch {
        Issue.record("expected \(expected.name), got \(error)", sourceLocation: sourceLocation)
    }
}

/// Runs `body` on a new thread and gives back its result (a blocking call in the background).
final class Background<T: Sendable>: Sendable {
    private let result = Mutex<Result<T, any Error>?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () throws -> T) {
        let thread = Thread { [self] in
            let value = Result { try body() }
            result.withLock { $0 = value }
            done.signal()
        }
        thread.start()
    }

    /// Waits for the result; throws if the deadline passes.
    func value(timeout: Double = 10) throws -> Result<T, any Error> {
        guard done.wait(timeout: .now() + timeout) == .success else {
            throw PeerError(description: "background call did not finish in \(timeout) s")
        }
        done.signal()
        return result.withLock { $0! }
    }

    /// Whether the call has finished yet.
    var isFinished: Bool { result.withLock { $0 != nil } }
}

/// Ends this process with status 99 after `seconds`: the deadline of an exit test's child,
/// whose parent waits for it without one.
func exitAfter(seconds: Double) {
    let thread = Thread {
        Thread.sleep(forTimeInterval: seconds)
        _exit(99)
    }
    thread.start()
}
