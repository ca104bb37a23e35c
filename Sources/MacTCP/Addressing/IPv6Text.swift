// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// IPv6 addresses as text and as their 16 bytes: RFC 4291's forms read, RFC 5952's canonical
/// form written. The resolver uses it for `nameserver` lines, `/etc/hosts` and AAAA records.
enum IPv6Text {
    /// The 16 bytes of `text`: eight groups of 1–4 hex digits, one `::` standing for one or
    /// more zero groups, an IPv4 dotted quad allowed as the last 32 bits; nil otherwise.
    static func bytes(_ text: String) -> [UInt8]? {
        guard text.contains(":"), text.allSatisfy({ $0.isASCII && ($0.isHexDigit || $0 == ":" || $0 == ".") }) else { return nil }
        let gaps = text.ranges(of: "::")
        guard gaps.count <= 1 else { return nil }
        let halves = gaps.first.map { [String(text[..<$0.lowerBound]), String(text[$0.upperBound...])] } ?? [text]
        var parsed: [[UInt16]] = []
        for (index, half) in halves.enumerated() {
            var groups: [UInt16] = []
            if !half.isEmpty {
                let parts = half.split(separator: ":", omittingEmptySubsequences: false)
                for (position, part) in parts.enumerated() {
                    let isLast = index == halves.count - 1 && position == parts.count - 1
                    if isLast, part.contains(".") {
                        guard let v4 = IPv4.address(String(part)) else { return nil }
                        groups += [UInt16(v4 >> 16), UInt16(v4 & 0xFFFF)]
                    } else {
                        guard (1...4).contains(part.count), let value = UInt16(part, radix: 16) else { return nil }
                        groups.append(value)
                    }
                }
            }
            parsed.append(groups)
        }
        let groups: [UInt16]
        if parsed.count == 2 {
            let zeros = 8 - parsed[0].count - parsed[1].count
            guard zeros >= 1 else { return nil }
            groups = parsed[0] + [UInt16](repeating: 0, count: zeros) + parsed[1]
        } else {
            guard parsed[0].count == 8 else { return nil }
            groups = parsed[0]
        }
        return groups.flatMap { [UInt8($0 >> 8), UInt8($0 & 0xFF)] }
    }

    /// RFC 5952 text for 16 bytes: lowercase hex without leading zeros, the longest run of
    /// two or more zero groups (the first of equal runs) as `::`.
    static func string(_ bytes: [UInt8]) -> String {
        guard bytes.count == 16 else { return bytes.map { String($0, radix: 16) }.joined(separator: ":") }
        let groups = (0..<8).map { UInt16(bytes[2 * $0]) << 8 | UInt16(bytes[2 * $0 + 1]) }
        var best: Range<Int>?
        var start: Int?
        for index in 0...8 {
            if index < 8, groups[index] == 0 {
                if start == nil { start = index }
            } else if let begin = start {
                if index - begin >= 2, index - begin > (best?.count ?? 0) { best = begin..<index }
                start = nil
            }
        }
        let hex = groups.map { String($0, radix: 16) }
        guard let run = best else { return hex.joined(separator: ":") }
        return hex[..<run.lowerBound].joined(separator: ":") + "::" + hex[run.upperBound...].joined(separator: ":")
    }
}
