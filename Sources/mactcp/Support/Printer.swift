// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Prints received data on standard output, urgent data visibly marked.
///
/// On a terminal, urgent bytes are shown in reverse video and the mark as `⟨mark⟩` after the
/// region's last byte. Whatever standard output is, a line on standard error tells each
/// urgent region's length and where its mark fell (so scripts see it too).
final class Printer: Sendable {
    private let total = Mutex(0)

    func show(_ result: TCPReceived, from name: String) {
        let start = total.withLock { value -> Int in
            defer { value += result.data.count }
            return value
        }
        let urgent = result.urgent || result.mark || inRegion.withLock { $0 }
        if urgent && Console.outputIsTerminal {
            output(Array("\u{1B}[7m".utf8) + result.data + Array("\u{1B}[0m".utf8) + (result.mark ? Array("⟨mark⟩".utf8) : []))
        } else {
            output(result.data)
        }
        if result.urgent { inRegion.withLock { $0 = true } }
        if urgent {
            if Console.json.load(ordering: .relaxed) {
                Console.line(
                    "{\"stream\":\(jsonString(name)),\"urgent\":{\"bytes\":\(result.data.count),\"offset\":\(start),"
                        + "\"regionStarts\":\(result.urgent),\"markAfter\":\(result.mark ? "\(start + result.data.count)" : "null")}}")
            } else {
                Console.line(
                    "[\(name)] urgent data: \(result.data.count) bytes at offset \(start)"
                        + (result.urgent ? ", region starts" : "") + (result.mark ? ", mark after byte \(start + result.data.count)" : ""))
            }
        }
        if result.mark { inRegion.withLock { $0 = false } }
    }

    private let inRegion = Mutex(false)
}
