// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import MacTCP
import Testing

@Suite("the async forms article's echo server", .timeLimit(.minutes(1)))
struct EchoServerExampleTests {
    @Test("the echo server of the async forms article serves more clients than its pool, in turn")
    func echo() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let probe = try Peer.listener()
            let port = probe.localPort
            probe.close()
            let server = Task(executorPreference: TestExecutor.shared) { try await Examples.echoServer(port: port, poolSize: 4) }
            defer { server.cancel() }
            // As with MacTCP, a client that arrives while no stream of the pool waits is
            // refused (at start-up, and between a connection's end and the stream's next
            // passive open), and one the kernel had queued as the last waiting stream took
            // its client is reset: such a client tries again.
            func client(_ index: Int) async throws -> String {
                for _ in 0..<100 {
                    do {
                        return try await Examples.echoClient(port: port, message: "message \(index)")
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
