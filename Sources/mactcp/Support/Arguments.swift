// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser
import MacTCP

// The argument types every subcommand shares: one set of rules, one wording for what is
// wrong. A value that does not parse is rejected by the parser with the argument's name and
// its help text (exit 64). Numeric options are declared with `parsing: .unconditional`, so
// that `--timeout -1` is read as the value -1 and rejected as out of range rather than taken
// for a missing value.

/// A host argument: a host name, or an address literal (a dotted quad, IPv6 with an optional
/// `%interface`), not an unspecified address (`0.0.0.0`, `::`). Text made only of digits and
/// dots must be a dotted quad.
struct Host: ExpressibleByArgument, Sendable {
    let text: String
    /// The address, when the argument is a literal.
    let literal: IPAddress?

    init?(argument: String) {
        if let address = IPAddress(argument) {
            guard address != .v4(0), address.description != "::" else { return nil }
            literal = address
        } else {
            guard Self.isName(argument) else { return nil }
            literal = nil
        }
        text = argument
    }

    /// RFC 1123 host name syntax: labels of letters, digits, `-` and `_`, 1…63 bytes, 253 in
    /// all, not all digits and dots.
    private static func isName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...253).contains(bytes.count), !bytes.allSatisfy({ $0 == UInt8(ascii: ".") || (48...57).contains($0) }) else {
            return false
        }
        let labels = text.split(separator: ".", omittingEmptySubsequences: false)
        func allowed(_ byte: UInt8) -> Bool {
            (65...90).contains(byte) || (97...122).contains(byte) || (48...57).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
        return labels.enumerated().allSatisfy { index, label in
            (label.isEmpty && index == labels.count - 1 && labels.count > 1)
                || ((1...63).contains(label.utf8.count) && label.utf8.allSatisfy(allowed))
        }
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// An address and port as the tool prints them: `10.0.0.1:80`, `[::1]:80`.
func endpointText(_ address: IPAddress, _ port: UInt16) -> String {
    address.isIPv6 ? "[\(address)]:\(port)" : "\(address):\(port)"
}

/// A remote port: 1…65535.
struct RemotePort: ExpressibleByArgument, Sendable {
    let value: UInt16

    init?(argument: String) {
        guard let value = UInt16(argument), value != 0 else { return nil }
        self.value = value
    }
}

/// A local port: 0…65535 (0: any free port).
struct LocalPort: ExpressibleByArgument, Sendable {
    let value: UInt16

    init(_ value: UInt16) { self.value = value }

    init?(argument: String) {
        guard let value = UInt16(argument) else { return nil }
        self.value = value
    }

    var defaultValueDescription: String { "\(value)" }
}

/// A number of seconds: finite, 0…2147483647 (0 keeps its documented meaning).
struct Seconds: ExpressibleByArgument, Sendable {
    let value: Double

    init(_ value: Double) { self.value = value }

    init?(argument: String) {
        guard let value = Double(argument), value.isFinite, value >= 0, value <= 2_147_483_647 else { return nil }
        self.value = value
    }

    var defaultValueDescription: String { value == value.rounded() ? "\(Int(value))" : "\(value)" }
}

/// A count: a whole number 0…(2^63 − 1).
struct Count: ExpressibleByArgument, Sendable {
    let value: Int

    init(_ value: Int) { self.value = value }

    init?(argument: String) {
        guard let value = Int(argument), value >= 0 else { return nil }
        self.value = value
    }

    var defaultValueDescription: String { "\(value)" }
}

/// `ADDRESS[:PORT]` for `--from`: a dotted quad, or IPv6 as `[ADDRESS]:PORT` or bare (PORT 0
/// or left out: any port).
struct Peer: ExpressibleByArgument, Sendable {
    let address: IPAddress
    let port: UInt16

    init?(argument: String) {
        // localhost is 127.0.0.1 here, as it was for IPv4-only filters.
        let text = argument.hasPrefix("localhost") ? "127.0.0.1" + argument.dropFirst(9) : argument
        guard let (address, port) = IPAddress.parse(hostAndPort: text) else { return nil }
        (self.address, self.port) = (address, port ?? 0)
    }
}
