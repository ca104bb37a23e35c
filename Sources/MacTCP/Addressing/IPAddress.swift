// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// An IP address of either family: MacTCP's IPv4 `UInt32` (host byte order), or an IPv6
/// address with its scope.
///
/// Parsed from text as `IPAddress("10.0.0.1")` or `IPAddress("fe80::1%eth0")`; printed in
/// RFC 5952's canonical form. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) is the IPv4
/// address it maps: `.v4`, so that one address has one value.
///
/// ```swift
/// let address = IPAddress("2001:DB8:0:0:0:0:0:1")!
/// print(address)  // → 2001:db8::1
/// print(IPAddress("::ffff:10.0.0.1") == .v4(0x0A00_0001))  // → true
/// ```
public enum IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// An IPv4 address in host byte order, as MacTCP's calls take it.
    case v4(UInt32)
    /// An IPv6 address.
    case v6(IPv6Address)

    /// The address `text` spells: a dotted quad, or IPv6 text (RFC 4291, an IPv4 dotted quad
    /// allowed in the last 32 bits, `%scope` by interface name or number); nil otherwise.
    ///
    /// - Parameter text: The address as text.
    public init?(_ text: String) {
        if let address = IPv4.address(text) {
            self = .v4(address)
        } else if let address = IPv6Address(text) {
            self = address.mappedIPv4.map(IPAddress.v4) ?? .v6(address)
        } else {
            return nil
        }
    }

    /// The address as text: dotted quad, or RFC 5952 with `%scope`.
    public var description: String {
        switch self {
        case .v4(let address): return IPv4.string(address)
        case .v6(let address): return address.description
        }
    }

    /// Whether the address is IPv6.
    public var isIPv6: Bool {
        if case .v6 = self { return true }
        return false
    }

    /// The IPv4 address, or nil for IPv6.
    public var ipv4: UInt32? {
        if case .v4(let address) = self { return address }
        return nil
    }
}

extension IPAddress {
    /// An address the kernel gave as 16 IPv6 bytes (error-queue entries, ICMP senders): an
    /// IPv4-mapped one as its IPv4 address, all zeros (unknown) as `.v4(0)`.
    init(kernelBytes bytes: [UInt8]) {
        guard bytes.contains(where: { $0 != 0 }) else {
            self = .v4(0)
            return
        }
        let v6 = IPv6Address(unchecked: bytes)
        self = v6.mappedIPv4.map(IPAddress.v4) ?? .v6(v6)
    }

    /// ``init(kernelBytes:)`` from a C array of 16 bytes.
    init(
        kernelBytes tuple: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)
    ) {
        self.init(kernelBytes: withUnsafeBytes(of: tuple) { Array($0) })
    }

    /// An address with an optional port, as `10.0.0.1`, `10.0.0.1:53`, `[2001:db8::1]:53` or a
    /// bare IPv6 address (`::1`, `fe80::1%eth0`; with a port it needs the brackets).
    ///
    /// - Parameter text: The address and port as text.
    /// - Returns: The address and the port (nil when none was given), or nil when `text` is
    ///   malformed.
    public static func parse(hostAndPort text: String) -> (address: IPAddress, port: UInt16?)? {
        var host = Substring(text)
        var port: UInt16?
        let bracketed = host.hasPrefix("[")
        if bracketed {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.hasPrefix(":"), let value = UInt16(rest.dropFirst()) else { return nil }
                port = value
            }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            guard let value = UInt16(host[host.index(after: colon)...]) else { return nil }
            port = value
            host = host[..<colon]
        }
        if let v4 = DNRNames.dottedQuad(String(host)), !bracketed {
            return (.v4(v4), port)
        } else if !host.contains("."), let v6 = IPv6Address(String(host)) {
            return (.v6(v6), port)
        } else if let v6 = IPv6Address(String(host)), let mapped = v6.mappedIPv4, bracketed {
            return (.v4(mapped), port)
        }
        return nil
    }
}

/// An IPv6 address: its 16 bytes in network order and, for a link-local address, the
/// interface it is on (the scope id).
public struct IPv6Address: Sendable, Hashable, CustomStringConvertible {
    /// The 16 bytes, in network order.
    public let bytes: [UInt8]
    /// The scope id (an interface index), 0 when none.
    public let scopeID: UInt32

    /// The loopback address, `::1`.
    public static let loopback = IPv6Address(unchecked: [UInt8](repeating: 0, count: 15) + [1])

    /// The unspecified address, `::`.
    static let unspecified = IPv6Address(unchecked: [UInt8](repeating: 0, count: 16))

    /// An address from its bytes.
    ///
    /// - Parameters:
    ///   - bytes: 16 bytes in network order.
    ///   - scopeID: The interface index for a link-local address, or 0.
    /// - Returns: nil unless `bytes` has 16 bytes.
    public init?(bytes: [UInt8], scopeID: UInt32 = 0) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
        self.scopeID = scopeID
    }

    init(unchecked bytes: [UInt8], scopeID: UInt32 = 0) {
        self.bytes = bytes
        self.scopeID = scopeID
    }

    /// The address `text` spells (RFC 4291), with an optional `%scope`: an interface name
    /// that exists or a number.
    ///
    /// - Parameter text: The address as text.
    /// - Returns: nil when `text` is not an IPv6 address, or names an unknown interface.
    public init?(_ text: String) {
        let parts = text.split(separator: "%", maxSplits: 1, omittingEmptySubsequences: false)
        guard let bytes = IPv6Text.bytes(String(parts[0])) else { return nil }
        var scope: UInt32 = 0
        if parts.count == 2 {
            let name = String(parts[1])
            if let number = UInt32(name) {
                scope = number
            } else if let index = Sys.interfaceIndex(name) {
                scope = index
            } else {
                return nil
            }
        }
        self.init(unchecked: bytes, scopeID: scope)
    }

    /// RFC 5952 text, with `%` and the interface's name (or number) when scoped.
    public var description: String {
        let text = IPv6Text.string(bytes)
        guard scopeID != 0 else { return text }
        return text + "%" + (Sys.interfaceName(scopeID) ?? String(scopeID))
    }

    /// Whether the address is link-local (`fe80::/10`), which needs a scope to be reached.
    public var isLinkLocal: Bool { bytes[0] == 0xFE && bytes[1] & 0xC0 == 0x80 }

    /// The IPv4 address an IPv4-mapped address (`::ffff:a.b.c.d`) stands for.
    var mappedIPv4: UInt32? {
        guard bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF else { return nil }
        return UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15])
    }
}
