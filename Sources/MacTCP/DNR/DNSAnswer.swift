// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// What an answer says about its question: the CNAME chain from the name asked, and the
/// records of the type asked at its end. Only the answer section's records on the chain are
/// used (RFC 2181 §5.4.1: the rest, additional sections included, is never believed).
struct DNSAnswer: Equatable {
    /// The name the records are for: the end of the chain (the official name, MacTCP's
    /// `cname`).
    let canonicalName: DNSName
    /// The chain's CNAME records, in order, then the records of the type asked.
    let records: [DNSRecord]
    /// The records of the type asked (empty: the name has none, or the chain ends elsewhere).
    let found: [DNSRecord]

    static let longestChain = 8

    /// Follows `question`'s name through the answer's CNAME records (at most 8 links); throws
    /// on a loop or a longer chain (the resolver's `dnrErr`).
    init(_ message: DNSMessage, question name: DNSName, type: DNSRecordType) throws(DNSFormatError) {
        var current = name
        var chain: [DNSRecord] = []
        var seen: Set<DNSName> = []  // the names of the chain, made only when there is one
        while true {
            let here = message.answers.filter { $0.name.sameName(as: current) && $0.dnsClass == DNSMessage.internetClass }
            let found = here.filter { $0.type == type }
            if !found.isEmpty || type == .cname {
                canonicalName = current
                self.found = found
                records = chain + found
                return
            }
            guard let alias = here.first(where: { $0.type == .cname }), case .name(let target) = alias.data else {
                canonicalName = current
                self.found = []
                records = chain
                return
            }
            chain.append(alias)
            guard chain.count <= Self.longestChain else { throw DNSFormatError("a CNAME chain longer than \(Self.longestChain) links") }
            if seen.isEmpty { seen.insert(name.canonical) }
            guard seen.insert(target.canonical).inserted else { throw DNSFormatError("a CNAME loop at \(target)") }
            current = target
        }
    }
}
