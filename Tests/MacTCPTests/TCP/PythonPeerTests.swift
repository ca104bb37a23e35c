// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import MacTCP
import Testing

/// Python's `socket` module as a second, independent peer for urgent data and half-close.
@Suite("Python peer", .timeLimit(.minutes(1)))
struct PythonPeerTests {
    /// Starts the Python peer for `scenario` against `port`.
    final class PythonPeer: Sendable {
        let child: ChildProcess

        init(_ scenario: String, port: UInt16) throws {
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent("Peers/python_peer.py").path
            child = try ChildProcess("python3", [script, scenario, String(port)])
            child.endInput()
        }

        /// Waits for the peer to finish and returns its JSON report.
        func report(timeout: Double = 20) throws -> [String: Any] {
            let status = try child.wait(timeout: timeout)
            #expect(status == 0, "the Python peer: \(child.errors)")
            return try JSONSerialization.jsonObject(with: Data(child.output.utf8)) as? [String: Any] ?? [:]
        }
    }

    @Test("urgent data from Python: region apart, urgent and mark on it, then normal data")
    func urgentFromPython() throws {
        let stream = try TCPStream()
        try stream.passiveOpen(timeout: 10)
        let python = try PythonPeer("urgent-to-mactcp", port: stream.getSockName().port)
        try stream.wait()
        var before: [UInt8] = []
        while before.count < 7 { before += try stream.receive(timeout: 10).data }
        #expect(before == Array("before|".utf8))
        try stream.send("g")
        try waitUntil(timeout: 10, "the urgent region and the rest") { try stream.status().amtUnreadData == 12 }
        #expect(try stream.receive(timeout: 10) == TCPReceived(data: Array("URGENT".utf8), urgent: true, mark: true))
        #expect(try stream.receive(timeout: 10) == TCPReceived(data: Array("|after".utf8), urgent: false, mark: false))
        expectMacTCPError(.connectionClosing) { _ = try stream.receive(timeout: 10) }
        try stream.send("done")
        try stream.close()
        #expect(try python.report()["done"] as? String == "done")
    }

    @Test("urgent data to Python: its sockatmark falls on the last byte of the urgent send")
    func urgentToPython() throws {
        let stream = try TCPStream()
        try stream.passiveOpen(timeout: 10)
        let python = try PythonPeer("urgent-from-mactcp", port: stream.getSockName().port)
        try stream.wait()
        try stream.send("normal,")
        try stream.send("URG", urgent: true)
        try stream.send(",tail", waitForAck: true)
        try stream.close()
        let report = try python.report()
        #expect(report["data"] as? String == "normal,URG,tail")
        #expect(report["marks"] as? [Int] == [10])
    }

    @Test("half-close with Python: it reads to our FIN, answers, and we still receive")
    func halfCloseWithPython() throws {
        let log = EventLog()
        let stream = try TCPStream()
        log.attach(to: stream)
        try stream.passiveOpen(timeout: 10)
        let python = try PythonPeer("half-close", port: stream.getSockName().port)
        try stream.wait()
        try stream.send("question")
        try stream.close()
        var answer: [UInt8] = []
        while true {
            do {
                answer += try stream.receive(timeout: 10).data
            } catch MacTCPError.connectionClosing {
                break
            }
        }
        #expect(String(decoding: answer, as: UTF8.self) == "answer after your FIN")
        #expect(try python.report()["data"] as? String == "question")
        try log.wait(for: .terminate)
        #expect(log.details(.terminate) == [TCPTerminationReason.ulpClose.rawValue])
    }
}
