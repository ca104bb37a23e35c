// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import MacTCP
import Testing

/// The documentation's examples: each Swift block of README.md, the DocC catalog and the doc
/// comments appears word for word in `Documentation/Examples/DocumentationExamples.swift`, which the tests
/// compile and run, and every `// → text` there is what its line printed.
@Suite("documentation examples", .serialized, .timeLimit(.minutes(1)))
struct DocumentationTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
    static let examplesPath = root.appendingPathComponent("Tests/MacTCPTests/Documentation/Examples/DocumentationExamples.swift").path

    /// The documents whose Swift blocks must be examples.
    static var documents: [String] {
        var paths = [root.appendingPathComponent("README.md").path]
        let enumerator = FileManager.default.enumerator(atPath: root.appendingPathComponent("Sources/MacTCP").path)
        while let relative = enumerator?.nextObject() as? String {
            if relative.hasSuffix(".md") || relative.hasSuffix(".swift") {
                paths.append(root.appendingPathComponent("Sources/MacTCP/" + relative).path)
            }
        }
        return paths
    }

    /// The Swift code blocks of a Markdown file, or of a Swift file's doc comments.
    static func swiftBlocks(in path: String) throws -> [[String]] {
        let swiftSource = path.hasSuffix(".swift")
        var blocks: [[String]] = []
        var current: [String]?
        for raw in try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false) {
            var line = raw.trimmingCharacters(in: .whitespaces)
            if swiftSource {
                guard line.hasPrefix("///") else {
                    current = nil
                    continue
                }
                line = String(line.dropFirst(3))
                if line.hasPrefix(" ") { line.removeFirst() }
            }
            if current == nil {
                if line.trimmingCharacters(in: .whitespaces) == "```swift" { current = [] }
            } else if line.trimmingCharacters(in: .whitespaces) == "```" {
                blocks.append(current!)
                current = nil
            } else {
                current!.append(line)
            }
        }
        return blocks
    }

    /// Lines compared without indentation, blank lines and imports; the examples are static
    /// members of `Examples` (so that their `print` is the recording one), which a document
    /// shows as plain functions.
    static func normalized(_ lines: [String]) -> [String] {
        lines.map { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return trimmed.hasPrefix("static func ") ? String(trimmed.dropFirst("static ".count)) : trimmed
        }
        .filter { !$0.isEmpty && !$0.hasPrefix("import ") }
    }

    @Test("every Swift block of the documentation is compiled here, word for word")
    func blocksAreExamples() throws {
        let examples = Self.normalized(try String(contentsOfFile: Self.examplesPath, encoding: .utf8).components(separatedBy: "\n"))
        var count = 0
        for document in Self.documents {
            for block in try Self.swiftBlocks(in: document) {
                let lines = Self.normalized(block)
                guard !lines.isEmpty else { continue }
                count += 1
                let found = (0...max(0, examples.count - lines.count)).contains { start in
                    Array(examples[start..<min(examples.count, start + lines.count)]) == lines
                }
                #expect(found, "a block of \(document) is not in DocumentationExamples.swift:\n\(block.joined(separator: "\n"))")
            }
        }
        #expect(count >= 10)
    }

    @Test("the examples run, and each line marked `// →` prints what its comment says")
    func examplesPrintWhatTheySay() async throws {
        exampleOutput.withLock { $0 = [:] }
        func step(_ name: String, _ body: () throws -> Void) {
            do { try body() } catch { Issue.record("the example \(name) threw \(error)") }
        }
        step("readmeExample", Examples.readmeExample)
        step("gettingStartedCreate", Examples.gettingStartedCreate)
        step("the connection examples", runConnectionExamples)
        step("gettingStartedUDP", Examples.gettingStartedUDP)
        step("gettingStartedICMPReport", Examples.gettingStartedICMPReport)
        step("gettingStartedDriver", Examples.gettingStartedDriver)
        step("tcpStreamDocExample", Examples.tcpStreamDocExample)
        step("udpStreamDocExample", Examples.udpStreamDocExample)
        step("macTCPErrorDocExample") {
            let closed = try activePair()
            defer { closed.stream.release() }
            closed.peer.shutdownWrite()
            try Examples.macTCPErrorDocExample(stream: closed.stream)
        }
        step("the urgent and ASR examples", runUrgentAndEventExamples)
        step("dnrDocExample", Examples.dnrDocExample)
        step("dnrResultDocExample", Examples.dnrResultDocExample)
        step("resolverOnDone", Examples.resolverOnDone)
        Examples.ipAddressDocExample()
        step("listeningPortDocExample", Examples.listeningPortDocExample)
        step("hostNamesExample", Examples.hostNamesExample)
        step("echoExample", Examples.echoExample)
        #expect(try await Examples.addresses(of: "localhost") == [IPv4.loopback])
        try await runEventSequenceExample()

        let printed = exampleOutput.withLock { $0 }
        let source = try String(contentsOfFile: Self.examplesPath, encoding: .utf8).components(separatedBy: "\n")
        var checked = 0
        for (index, line) in source.enumerated() {
            guard let arrow = line.range(of: "// → "), !line.trimmingCharacters(in: .whitespaces).hasPrefix("//") else { continue }
            let expected = String(line[arrow.upperBound...])
            let lineNumber = UInt(index + 1)
            let outputs = printed[lineNumber] ?? []
            #expect(!outputs.isEmpty, "line \(lineNumber) never printed; it says: \(expected)")
            for output in outputs {
                #expect(Self.matches(output, expected), "line \(lineNumber) printed \"\(output)\", its comment says \"\(expected)\"")
            }
            checked += 1
        }
        #expect(checked >= 15)
    }

    /// Whether some example printed a line that starts with `prefix`.
    static func printed(_ prefix: String) -> Bool {
        let outputs: [String] = exampleOutput.withLock { Array($0.values.joined()) }
        return outputs.contains { $0.hasPrefix(prefix) }
    }

    /// Whether `text` is `pattern`, where each `…` in the pattern stands for any characters.
    static func matches(_ text: String, _ pattern: String) -> Bool {
        let parts = pattern.components(separatedBy: "…")
        var rest = Substring(text)
        for (index, part) in parts.enumerated() {
            if index == 0 {
                guard rest.hasPrefix(part) else { return false }
                rest = rest.dropFirst(part.count)
            } else if index == parts.count - 1 {
                return part.isEmpty || rest.hasSuffix(part)
            } else {
                guard let found = rest.range(of: part) else { return false }
                rest = rest[found.upperBound...]
            }
        }
        return rest.isEmpty
    }

    /// Getting started's connection examples, in order, on one connection between two streams.
    private func runConnectionExamples() throws {
        let server = try TCPStream()
        let client = try TCPStream()
        defer {
            server.release()
            client.release()
        }
        try Examples.gettingStartedPassiveOpen(stream: server, client: client)
        try Examples.gettingStartedSend(client: client)
        try Examples.gettingStartedReceive(stream: server)
        try Examples.gettingStartedReceiveInto(stream: server)
        try Examples.gettingStartedStatus(stream: server)
        var bulk = 4096  // the receive into a buffer took the first 4 KiB
        while bulk < 16_384 { bulk += try server.receive(timeout: 5).data.count }
        try server.send("hello")
        try server.close()
        try Examples.gettingStartedClose(client: client)
    }

    private func runUrgentAndEventExamples() throws {
        let pair = try passivePair()
        defer { pair.stream.release() }
        let client = try TCPStream()
        defer { client.release() }
        let server = try TCPStream()
        defer { server.release() }
        try server.passiveOpen(port: 0, timeout: 5)
        Examples.asrExample(stream: server)
        try client.activeOpen(host: IPv4.loopback, remotePort: server.getSockName().port, timeout: 5)
        try server.wait()
        try Examples.urgentExample(client: client, server: server)
        try client.abort()
        try waitUntil(timeout: 5, "the ASR's terminate") { Self.printed("connection over:") }
        _ = pair
    }

    private func runEventSequenceExample() async throws {
        let pair = try activePair()
        defer { pair.stream.release() }
        let watching = Task { await Examples.eventSequenceExample(stream: pair.stream) }
        try pair.peer.send("x")
        pair.peer.reset()
        let ended = Task {
            try await Task.sleep(for: .seconds(10))
            watching.cancel()
        }
        await watching.value
        ended.cancel()
        #expect(Self.printed("terminate"))
    }
}
