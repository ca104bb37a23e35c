// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The tool's two output channels: data on standard output, messages on standard error.
///
/// Every line the tool composes goes through here, so that three rules hold everywhere:
/// - with `--json`, every line on standard error is one JSON object (JSON Lines);
/// - a message never runs into data on the same terminal line (when standard output and
///   standard error are terminals and the data did not end with a newline, the message
///   starts on a line of its own), and never into a progress line (which it erases first);
/// - bytes from the network are shown escaped in composed lines (``Console/escaped(_:)``);
///   raw bytes go only to standard output, where the user asked for a byte stream.
enum Console {
    /// Whether messages are JSON objects (`--json`); set before any thread starts.
    static let json = Atomic(false)
    static let outputIsTerminal = isatty(1) == 1
    static let errorIsTerminal = isatty(2) == 1

    private struct State {
        /// Standard output is a terminal and its last byte was not a newline.
        var outputMidLine = false
        /// A progress line is on standard error, without its newline.
        var progressShown = false
    }

    private static let state = Mutex(State())

    /// Writes data to standard output as it is.
    static func data(_ bytes: [UInt8]) {
        state.withLock { state in
            writeAll(1, bytes)
            if outputIsTerminal, let last = bytes.last { state.outputMidLine = last != 0x0A }
        }
    }

    /// Writes a message line to standard error (a JSON object `{"message": …}` with `--json`).
    static func message(_ text: String) {
        line(json.load(ordering: .relaxed) ? "{\"message\":\(jsonString(text))}" : text)
    }

    /// Writes one composed line to standard error as it is (already JSON with `--json`).
    static func line(_ text: String) {
        state.withLock { state in
            var prefix = ""
            if state.progressShown {
                prefix = "\r\u{1B}[K"
                state.progressShown = false
            }
            if state.outputMidLine && errorIsTerminal {
                prefix += "\n"
                state.outputMidLine = false
            }
            writeAll(2, Array((prefix + text + "\n").utf8))
        }
    }

    /// Replaces the progress line on standard error (a terminal) with `text`; `final` ends it.
    static func progress(_ text: String, final: Bool) {
        state.withLock { state in
            writeAll(2, Array(("\r" + text + "\u{1B}[K" + (final ? "\n" : "")).utf8))
            state.progressShown = !final
        }
    }

    /// `text` with every character a terminal would act on shown as an escape instead: the C0
    /// controls but tab, DEL and the C1 controls (`\e`, `\x7F`, `\u{9B}`, …), and backslash
    /// doubled so that an escape cannot be forged.
    static func escaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x5C: result += "\\\\"
            case 0x0A: result += "\\n"
            case 0x0D: result += "\\r"
            case 0x09: result.unicodeScalars.append(scalar)
            case 0x1B: result += "\\e"
            case 0..<0x20, 0x7F...0x9F: result += "\\x" + hex(scalar.value, digits: 2)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// Bytes for a composed line: UTF-8 where valid (escaped), `\xNN` for each byte that is
    /// not part of a well-formed sequence.
    static func escaped(_ bytes: [UInt8]) -> String {
        var result = ""
        var parser = Unicode.UTF8.ForwardParser()
        var iterator = bytes.makeIterator()
        var offset = 0
        while true {
            switch parser.parseScalar(from: &iterator) {
            case .valid(let encoded):
                result += escaped(String(Unicode.UTF8.decode(encoded)))
                offset += encoded.count
            case .error(let length):
                for byte in bytes[offset..<(offset + length)] { result += "\\x" + hex(UInt32(byte), digits: 2) }
                offset += length
            case .emptyInput:
                return result
            }
        }
    }

    /// Reads from `fd` into `buffer`, retrying on EINTR: the count read (0 at the end), or -1
    /// with `errno` set.
    static func read(_ fd: Int32, into buffer: inout [UInt8]) -> Int {
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count >= 0 || errno != EINTR { return count }
        }
    }

    static func hex(_ value: UInt32, digits: Int) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, digits - text.count)) + text
    }

    private static func writeAll(_ fd: Int32, _ bytes: [UInt8]) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return }
            offset += written
        }
    }
}

/// A JSON string literal for `text`: quotes, backslash, the C0 controls and also U+007F–U+009F
/// escaped, so that no JSON line carries a byte a terminal would act on.
func jsonString(_ text: String) -> String {
    var result = "\""
    for scalar in text.unicodeScalars {
        switch scalar.value {
        case 0x22: result += "\\\""
        case 0x5C: result += "\\\\"
        case 0x0A: result += "\\n"
        case 0x0D: result += "\\r"
        case 0x09: result += "\\t"
        case 0..<0x20, 0x7F...0x9F: result += "\\u" + Console.hex(scalar.value, digits: 4)
        default: result.unicodeScalars.append(scalar)
        }
    }
    return result + "\""
}

/// Standard base64 (RFC 4648, with padding), for bytes carried losslessly in JSON.
func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var index = 0
    while index < bytes.count {
        let b0 = UInt32(bytes[index])
        let b1 = index + 1 < bytes.count ? UInt32(bytes[index + 1]) : 0
        let b2 = index + 2 < bytes.count ? UInt32(bytes[index + 2]) : 0
        let triple = b0 << 16 | b1 << 8 | b2
        out.append(alphabet[Int(triple >> 18 & 63)])
        out.append(alphabet[Int(triple >> 12 & 63)])
        out.append(index + 1 < bytes.count ? alphabet[Int(triple >> 6 & 63)] : UInt8(ascii: "="))
        out.append(index + 2 < bytes.count ? alphabet[Int(triple & 63)] : UInt8(ascii: "="))
        index += 3
    }
    return String(decoding: out, as: UTF8.self)
}

/// Writes a message line to standard error (see ``Console/message(_:)``).
func complain(_ text: String) {
    Console.message(text)
}

/// Writes bytes to standard output, as they are.
func output(_ bytes: [UInt8]) {
    Console.data(bytes)
}
