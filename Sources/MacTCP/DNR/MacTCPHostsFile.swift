// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// MacTCP's Hosts file: RFC 1035 master-file lines that preload the resolver's cache and
/// name the servers for domains.
///
/// Each line is `NAME [TTL] [CLASS] TYPE DATA` (TTL and class in either order, class `IN`),
/// with `A`, `CNAME` and `NS` records; `;` starts a comment; `$ORIGIN` sets the origin that
/// relative names (without a trailing dot) are completed with, `@` names the origin itself,
/// `$TTL` the TTL of lines that give none (default one day); a line that starts with a blank
/// reuses the previous line's name. A `domain NS server` line makes that server the one
/// asked for names under `domain` and needs the server's `A` line (glue). A line that cannot
/// be read is reported with its number; the others still count.
struct MacTCPHostsFile: Equatable {
    /// The records, in file order.
    var records: [DNSRecord] = []
    /// The name servers for domains: each domain (lowercased) with the addresses of its
    /// servers, from the `NS` lines and their glue.
    var servers: [String: [UInt32]] = [:]
    /// Lines that could not be read: the line number and why.
    var problems: [(line: Int, reason: String)] = []

    static func == (lhs: MacTCPHostsFile, rhs: MacTCPHostsFile) -> Bool {
        lhs.records == rhs.records && lhs.servers == rhs.servers && lhs.problems.map(\.line) == rhs.problems.map(\.line)
    }

    static let defaultTTL: UInt32 = 86_400

    init(parsing text: String) {
        var origin = DNSName.root
        var ttl = Self.defaultTTL
        var previous: DNSName?
        var delegations: [(domain: DNSName, server: DNSName, line: Int)] = []
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            let line = rawLine.prefix { $0 != ";" }
            let startsBlank = line.first == " " || line.first == "\t"
            var words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(String.init)
            guard !words.isEmpty else { continue }
            func problem(_ reason: String) { problems.append((number, reason)) }
            if words[0].uppercased() == "$ORIGIN" {
                guard words.count >= 2, let name = Self.name(words[1], origin: origin) else {
                    problem("$ORIGIN needs a name")
                    continue
                }
                origin = name
                continue
            }
            if words[0].uppercased() == "$TTL" {
                guard words.count >= 2, let value = UInt32(words[1]) else {
                    problem("$TTL needs a number of seconds")
                    continue
                }
                ttl = value
                continue
            }
            let owner: DNSName
            if startsBlank {
                guard let last = previous else {
                    problem("a line that starts with a blank needs a name on a line before it")
                    continue
                }
                owner = last
            } else {
                guard let name = Self.name(words.removeFirst(), origin: origin) else {
                    problem("the name is not a host name")
                    continue
                }
                owner = name
            }
            previous = owner
            var recordTTL = ttl
            while let first = words.first, first.uppercased() == "IN" || UInt32(first) != nil {
                if let value = UInt32(first) { recordTTL = value }
                words.removeFirst()
            }
            guard words.count >= 2, let type = DNSRecordType(mnemonic: words[0]) else {
                problem("expected TYPE DATA after the name (A, CNAME or NS)")
                continue
            }
            switch type {
            case .a:
                guard let address = DNRNames.dottedQuad(words[1]) else {
                    problem("an A record needs a dotted quad")
                    continue
                }
                records.append(DNSRecord(name: owner, type: .a, dnsClass: 1, ttl: recordTTL, data: .a(address)))
            case .cname, .ns:
                guard let target = Self.name(words[1], origin: origin) else {
                    problem("a \(type) record needs a host name")
                    continue
                }
                records.append(DNSRecord(name: owner, type: type, dnsClass: 1, ttl: recordTTL, data: .name(target)))
                if type == .ns { delegations.append((owner, target, number)) }
            default:
                problem("\(type) records are not read from a Hosts file (A, CNAME and NS are)")
            }
        }
        for (domain, server, line) in delegations {
            let glue = records.compactMap { record -> UInt32? in
                guard record.type == .a, record.name.sameName(as: server), case .a(let address) = record.data else { return nil }
                return address
            }
            if glue.isEmpty {
                problems.append((line, "the name server \(server) of \(domain) has no A line (glue)"))
                continue
            }
            servers[domain.description.lowercased(), default: []].append(contentsOf: glue)
        }
        problems.sort { $0.line < $1.line }
    }

    /// A name from the file: absolute with a trailing dot, `@` for the origin, otherwise
    /// completed with the origin.
    private static func name(_ text: String, origin: DNSName) -> DNSName? {
        if text == "@" { return origin }
        if text.hasSuffix(".") { return DNSName(text) }
        return DNSName(text)?.appending(origin)
    }

    /// The servers for `name`: those of the longest domain it is under (as MacTCP chose); the
    /// root's (`. NS server`) for any name.
    func servers(for name: DNSName) -> [UInt32]? {
        var domain = name
        while let parent = domain.parent {
            if let found = servers[domain.description.lowercased()] { return found }
            domain = parent
        }
        return servers["."]
    }

    /// The cache entries the file preloads: for each name, its `A` records (in file order),
    /// its `CNAME` (as a `CNAME` answer, and as an `A` answer through the alias when the
    /// file gives the target's addresses) and its `NS` records.
    var preloads: [(key: DNRCache.Key, records: [DNSRecord])] {
        var grouped: [DNRCache.Key: [DNSRecord]] = [:]
        var order: [DNRCache.Key] = []
        func add(_ key: DNRCache.Key, _ records: [DNSRecord]) {
            if grouped[key] == nil { order.append(key) }
            grouped[key, default: []].append(contentsOf: records)
        }
        for record in records { add(DNRCache.Key(record.name, record.type), [record]) }
        for alias in records where alias.type == .cname {
            guard case .name(let target) = alias.data else { continue }
            let addresses = records.filter { $0.type == .a && $0.name.sameName(as: target) }
            if !addresses.isEmpty { add(DNRCache.Key(alias.name, .a), [alias] + addresses) }
        }
        return order.map { ($0, grouped[$0] ?? []) }
    }
}
