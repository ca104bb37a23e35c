// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// Addressing: IPv4 addresses as MacTCP spells them (`UInt32` in host byte order), IPv6
// addresses and `IPAddress` for either, parsed from and printed as text; socket addresses; the
// order to try a name's addresses (RFC 6724, RFC 8305). It calls the kernel only through
// `System/` (interface names, source addresses); every subsystem uses it.

/// IPv4 addresses as MacTCP uses them: a `UInt32` in host byte order
/// (`127.0.0.1` is `0x7F00_0001`).
public enum IPv4 {
    /// The loopback address, 127.0.0.1.
    public static let loopback: UInt32 = 0x7F00_0001

    /// Parses dotted-quad text (`"10.0.0.1"`) into a host-order address; nil if malformed.
    ///
    /// - Parameter text: Four decimal numbers 0…255 separated by dots.
    /// - Returns: The address, or nil when `text` is not a dotted quad.
    public static func address(_ text: String) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var result: UInt32 = 0
        for part in parts {
            guard !part.isEmpty, part.count <= 3, part.allSatisfy(\.isASCII),
                let value = UInt32(part), value <= 255
            else { return nil }
            result = result << 8 | value
        }
        return result
    }

    /// Formats a host-order address as dotted-quad text. This is DNR's `AddrToStr`.
    ///
    /// - Parameter address: The address in host byte order.
    /// - Returns: Text such as `"127.0.0.1"`.
    public static func string(_ address: UInt32) -> String {
        "\(address >> 24).\(address >> 16 & 0xFF).\(address >> 8 & 0xFF).\(address & 0xFF)"
    }
}

/// Formats a host-order IPv4 address as dotted-quad text, as DNR's `AddrToStr` does.
///
/// - Parameter address: The address in host byte order.
/// - Returns: Text such as `"127.0.0.1"`.
public func addrToStr(_ address: UInt32) -> String {
    IPv4.string(address)
}
