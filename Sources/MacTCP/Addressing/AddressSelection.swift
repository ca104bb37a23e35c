// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The order in which a name's addresses are tried: RFC 6724's destination address
/// selection, then the families interleaved as RFC 8305 §4 asks.
///
/// The rules applied, in order: (1) an address with no route (no source address for it) goes
/// last; (2) prefer an address whose scope matches its source's; (5) prefer an address whose
/// label matches its source's; (6) prefer higher precedence (the default policy table of
/// §2.1: `::1` first, then IPv6, then IPv4, then 6to4, Teredo and the others); (8) prefer the
/// smaller scope; (9) between two of the same family, prefer the longer prefix shared with
/// the source; (10) otherwise keep the server's order. Rules 3, 4 and 7 (deprecated, home and
/// native-transport addresses) need information Linux does not give a socket and are left out.
enum AddressSelection {
    /// `addresses` sorted and interleaved; `source` finds the source address the kernel would
    /// use for a destination (nil: unreachable).
    static func ordered(_ addresses: [IPAddress], source: (IPAddress) -> IPAddress? = Sys.sourceAddress(to:)) -> [IPAddress] {
        let candidates = addresses.enumerated().map { (index: $0.offset, address: $0.element, source: source($0.element)) }
        let sorted = candidates.sorted { precedes($0, $1) }.map(\.address)
        return interleaved(sorted)
    }

    /// RFC 8305 §4: the first address's family, then the other, alternately, each family in
    /// its own order.
    static func interleaved(_ addresses: [IPAddress]) -> [IPAddress] {
        guard let first = addresses.first else { return [] }
        var preferred = addresses.filter { $0.isIPv6 == first.isIPv6 }[...]
        var other = addresses.filter { $0.isIPv6 != first.isIPv6 }[...]
        var result: [IPAddress] = []
        while !preferred.isEmpty || !other.isEmpty {
            if let next = preferred.popFirst() { result.append(next) }
            if let next = other.popFirst() { result.append(next) }
        }
        return result
    }

    private typealias Candidate = (index: Int, address: IPAddress, source: IPAddress?)

    private static func precedes(_ a: Candidate, _ b: Candidate) -> Bool {
        // Rule 1: avoid unusable destinations.
        if (a.source == nil) != (b.source == nil) { return a.source != nil }
        if let sa = a.source, let sb = b.source {
            // Rule 2: prefer matching scope.
            let aScope = scope(a.address) == scope(sa)
            let bScope = scope(b.address) == scope(sb)
            if aScope != bScope { return aScope }
            // Rule 5: prefer matching label.
            let aLabel = policy(a.address).label == policy(sa).label
            let bLabel = policy(b.address).label == policy(sb).label
            if aLabel != bLabel { return aLabel }
        }
        // Rule 6: prefer higher precedence.
        let aPrecedence = policy(a.address).precedence
        let bPrecedence = policy(b.address).precedence
        if aPrecedence != bPrecedence { return aPrecedence > bPrecedence }
        // Rule 8: prefer smaller scope.
        if scope(a.address) != scope(b.address) { return scope(a.address) < scope(b.address) }
        // Rule 9: use the longest matching prefix (same family only).
        if let sa = a.source, let sb = b.source, a.address.isIPv6 == b.address.isIPv6, a.address.isIPv6 {
            let aCommon = commonPrefix(bytes(a.address), bytes(sa))
            let bCommon = commonPrefix(bytes(b.address), bytes(sb))
            if aCommon != bCommon { return aCommon > bCommon }
        }
        // Rule 10: keep the order.
        return a.index < b.index
    }

    /// The address as IPv6 bytes (IPv4 as `::ffff:a.b.c.d`, as RFC 6724 §2.1 treats it).
    static func bytes(_ address: IPAddress) -> [UInt8] {
        switch address {
        case .v6(let v6): return v6.bytes
        case .v4(let v4):
            return [UInt8](repeating: 0, count: 10) + [
                0xFF, 0xFF, UInt8(v4 >> 24), UInt8(v4 >> 16 & 0xFF), UInt8(v4 >> 8 & 0xFF), UInt8(v4 & 0xFF),
            ]
        }
    }

    /// The default policy table of RFC 6724 §2.1: (prefix, length, precedence, label).
    private static let table: [(prefix: [UInt8], length: Int, precedence: Int, label: Int)] = [
        ([UInt8](repeating: 0, count: 15) + [1], 128, 50, 0),
        ([0x00], 0, 40, 1),
        ([UInt8](repeating: 0, count: 10) + [0xFF, 0xFF], 96, 35, 4),
        ([0x20, 0x02], 16, 30, 2),
        ([0x20, 0x01, 0x00, 0x00], 32, 5, 5),
        ([0xFC], 7, 3, 13),
        ([UInt8](repeating: 0, count: 12), 96, 1, 3),
        ([0xFE, 0xC0], 10, 1, 11),
        ([0x3F, 0xFE], 16, 1, 12),
    ]

    /// The precedence and label of the longest matching prefix of the table.
    static func policy(_ address: IPAddress) -> (precedence: Int, label: Int) {
        let raw = bytes(address)
        var best = (length: -1, precedence: 40, label: 1)
        for entry in table
        where entry.length > best.length
            && commonPrefix(raw, entry.prefix + [UInt8](repeating: 0, count: 16 - entry.prefix.count)) >= entry.length
        {
            best = (entry.length, entry.precedence, entry.label)
        }
        return (best.precedence, best.label)
    }

    /// RFC 6724 §3.1 scopes: link-local 2 (IPv6 `fe80::/10` and `::1`; IPv4 127/8 and
    /// 169.254/16), site-local 5 (`fec0::/10`), global 14; multicast by its scope field.
    static func scope(_ address: IPAddress) -> Int {
        switch address {
        case .v4(let v4):
            return v4 >> 24 == 127 || v4 >> 16 == 0xA9FE ? 2 : 14
        case .v6(let v6):
            let raw = v6.bytes
            if raw[0] == 0xFF { return Int(raw[1] & 0x0F) }
            if raw == IPv6Address.loopback.bytes || (raw[0] == 0xFE && raw[1] & 0xC0 == 0x80) { return 2 }
            if raw[0] == 0xFE && raw[1] & 0xC0 == 0xC0 { return 5 }
            return 14
        }
    }

    /// The number of leading bits `a` and `b` share.
    static func commonPrefix(_ a: [UInt8], _ b: [UInt8]) -> Int {
        var bits = 0
        for (x, y) in zip(a, b) {
            if x == y {
                bits += 8
                continue
            }
            return bits + (x ^ y).leadingZeroBitCount
        }
        return bits
    }
}
