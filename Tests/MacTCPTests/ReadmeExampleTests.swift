import MacTCP
import Testing

// The README's async echo server and client, word for word, so that the example stays true.

func echoServer(port: UInt16, poolSize: Int) async throws {
    try await withThrowingTaskGroup(of: Void.self) { group in
        for _ in 0..<poolSize {
            group.addTask {
                while true {                                  // one connection after another
                    let stream = try TCPStream()
                    defer { stream.release() }
                    try stream.passiveOpen(port: port)
                    try await stream.wait()                   // a client has connected
                    do {
                        while true {
                            let received = try await stream.receive(timeout: .seconds(60))
                            try await stream.send(received.data)
                        }
                    } catch MacTCPError.connectionClosing {   // the client has closed
                        try await stream.close()
                    } catch {
                        continue                              // reset, timeout: serve the next one
                    }
                }
            }
        }
        try await group.waitForAll()
    }
}

func echoClient(port: UInt16, message: String) async throws -> String {
    let stream = try TCPStream()
    defer { stream.release() }
    try await stream.activeOpen(host: IPv4.loopback, remotePort: port, timeout: .seconds(5))
    try await stream.send(message)
    try await stream.close()                                  // "no more data from me"
    var echo: [UInt8] = []
    do {
        while true { echo += try await stream.receive(timeout: .seconds(5)).data }
    } catch MacTCPError.connectionClosing {}                  // the server has closed too
    return String(decoding: echo, as: UTF8.self)
}

@Suite("README example", .timeLimit(.minutes(1)))
struct ReadmeExampleTests {
    @Test("the README's async echo server serves more clients than its pool, in turn")
    func echo() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let probe = try Peer.listener()
            let port = probe.localPort
            probe.close()
            let server = Task(executorPreference: TestExecutor.shared) { try await echoServer(port: port, poolSize: 4) }
            defer { server.cancel() }
            // As with MacTCP, a client that arrives while no stream of the pool waits is
            // refused (at start-up, and between a connection's end and the stream's next
            // passive open): such a client tries again.
            func client(_ index: Int) async throws -> String {
                for _ in 0..<100 {
                    do {
                        return try await echoClient(port: port, message: "message \(index)")
                    } catch let error as MacTCPError where error == .openFailed || error == .connectionTerminated {
                        await TestExecutor.sleep(for: .milliseconds(20))
                    }
                }
                throw PeerError(description: "client \(index) was never served")
            }
            for round in 0..<4 {
                let answers = try await withThrowingTaskGroup(of: (Int, String).self) { group in
                    for index in (round * 3)..<(round * 3 + 3) {
                        group.addTask { (index, try await client(index)) }
                    }
                    return try await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
                }
                for (index, answer) in answers {
                    #expect(answer == "message \(index)")
                }
                #expect(answers.count == 3)
            }
        }
    }
}
