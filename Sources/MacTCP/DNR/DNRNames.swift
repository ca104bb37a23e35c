// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The rules a name follows before anything is asked: its syntax, whether it is an address
/// already, the names answered without a packet (RFC 6761, RFC 7686), and the candidates the
/// search list makes of it.
enum DNRNames {
    /// A dotted quad exactly: four decimal parts 0–255 without leading zeros (`127.1`,
    /// `0x7f.0.0.1` and `010.0.0.1` are names, not addresses).
    static func dottedQuad(_ text: String) -> UInt32? {
        var address: UInt32 = 0
        var part: UInt32 = 0
        var digits = 0
        var dots = 0
        for byte in text.utf8 {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, dots < 3 else { return nil }
                address = address << 8 | part
                dots += 1
                part = 0
                digits = 0
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 3, digits == 0 || part != 0 else { return nil }
            part = part * 10 + UInt32(byte - UInt8(ascii: "0"))
            digits += 1
            guard part <= 255 else { return nil }
        }
        guard digits > 0, dots == 3 else { return nil }
        return address << 8 | part
    }

    /// The name as the resolver takes it, or `nameSyntaxErr` saying what is wrong: ASCII
    /// letters, digits, hyphens and underscores in labels of 1–63 bytes, at most 253
    /// characters without the trailing dot (no IDNA: other characters are refused).
    static func validated(_ text: String, operation: String) throws(MacTCPError) -> (name: DNSName, absolute: Bool) {
        if let name = DNSName(hostName: text), !name.isRoot {
            return (name, text.utf8.last == UInt8(ascii: "."))
        }
        // Refused: the checks again, one by one, to say which rule it breaks.
        func refuse(_ why: String) -> MacTCPError {
            MacTCPError.nameSyntaxErr.with(operation: operation, detail: "\"\(text)\" is not a host name: \(why)")
        }
        let absolute = text.hasSuffix(".") && text != "."
        let body = absolute ? String(text.dropLast()) : text
        if body.isEmpty || body == "." { throw refuse("it is empty") }
        guard body.utf8.allSatisfy({ $0 == UInt8(ascii: ".") || DNSName.isHostNameByte($0) }) else {
            throw refuse("only ASCII letters, digits, '-', '_' and '.' may appear")
        }
        if body.utf8.count > 253 { throw refuse("it is longer than 253 characters") }
        let labels = body.split(separator: ".", omittingEmptySubsequences: false)
        if labels.contains(where: \.isEmpty) { throw refuse("a label is empty") }
        if labels.contains(where: { $0.utf8.count > 63 }) { throw refuse("a label is longer than 63 characters") }
        guard let name = DNSName(body) else { throw refuse("it cannot be a DNS name") }
        return (name, absolute)
    }

    /// What a special-use name is answered with, without a packet.
    enum Special: Equatable {
        /// `localhost` and names under it (RFC 6761 §6.3): 127.0.0.1 and ::1.
        case loopback
        /// `invalid` and names under it (RFC 6761 §6.4): the name does not exist.
        case invalid
        /// Names under `onion` (RFC 7686): never asked, never given the search list.
        case onion
    }

    static func special(_ name: DNSName) -> Special? {
        if name.endsWith(label: "localhost") { return .loopback }
        if name.endsWith(label: "invalid") { return .invalid }
        if name.endsWith(label: "onion") { return .onion }
        return nil
    }

    /// The names to ask, in order: an absolute name as it is; a name with fewer than `ndots`
    /// dots with each search domain first and then as it is; otherwise as it is first, then
    /// with the search domains (glibc's and Go's order).
    static func candidates(_ name: DNSName, absolute: Bool, configuration: DNRConfiguration) -> [DNSName] {
        if absolute { return [name] }
        if configuration.searchDomains.isEmpty { return [name] }
        let searched = configuration.searchDomains.compactMap { DNSName($0).flatMap(name.appending) }
        let dots = name.labelCount - 1
        return dots < configuration.ndots ? searched + [name] : [name] + searched
    }
}
