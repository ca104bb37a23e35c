// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser
import MacTCP

// The argument types every subcommand shares: one set of rules, one wording for what is
// wrong. A value that does not parse is rejected by the parser with the argument's name and
// its help text (exit 64). Numeric options are declared with `parsing: .unconditional`, so
// that `--timeout -1` is read as the value -1 and rejected as out of range rather than taken
// for a missing value.

/// A host argument: dotted-quad IPv4 (not 0.0.0.0), or `localhost`.
struct Host: ExpressibleByArgument, Sendable {
    let address: UInt32

    init?(argument: String) {
        if argument == "localhost" {
            address = IPv4.loopback
        } else if let parsed = IPv4.address(argument), parsed != 0 {
            address = parsed
        } else {
            return nil
        }
    }

    static var defaultCompletionKind: CompletionKind { .default }
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

/// `HOST[:PORT]` for `--from` (PORT 0 or left out: any port).
struct Peer: ExpressibleByArgument, Sendable {
    let host: UInt32
    let port: UInt16

    init?(argument: String) {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), let host = Host(argument: String(parts[0])) else { return nil }
        self.host = host.address
        if parts.count == 2 {
            guard let port = UInt16(parts[1]) else { return nil }
            self.port = port
        } else {
            port = 0
        }
    }
}
