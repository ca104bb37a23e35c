// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The resolver's cache: answers per name and type, positive ones for their TTL, negative ones
/// (the name does not exist, or has no record of the type) as RFC 2308 says, with MacTCP's
/// Hosts file entries kept for ever.
///
/// - A positive answer lives for the least TTL of the records it is made of (the CNAME chain
///   and the records at its end), at most one day; TTL 0 is not cached.
/// - A negative answer lives for min(SOA TTL, SOA MINIMUM) of the SOA record in the answer's
///   authority section, at most one hour; without an SOA it is not cached.
/// - At most ``capacity`` entries: when full, the eighth least recently used are dropped
///   (amortised: one scan per `capacity / 8` insertions). Hosts-file entries are never
///   dropped or expired.
///
/// Times are the monotonic clock's nanoseconds, passed in, so that the rules can be tested
/// without waiting.
struct DNRCache {
    struct Key: Hashable {
        /// The name in lower case (``DNSName/canonical``).
        let name: DNSName
        let type: UInt16

        init(_ name: DNSName, _ type: DNSRecordType) {
            self.init(canonical: name.canonical, type)
        }

        init(canonical: DNSName, _ type: DNSRecordType) {
            self.name = canonical
            self.type = type.rawValue
        }
    }

    enum Answer: Equatable {
        /// The records: the CNAME chain first, then those of the type asked.
        case records([DNSRecord])
        /// The name does not exist (`authNameErr`) or has no such record: the MacTCP code.
        case negative(rtnCode: Int)
    }

    struct Entry {
        let answer: Answer
        /// When it expires (nanoseconds of the monotonic clock); nil: never (Hosts file).
        let expires: UInt64?
        var lastUse: UInt64
    }

    static let capacity = 8192
    static let longestPositive: UInt64 = 86_400
    static let longestNegative: UInt64 = 3600

    private(set) var entries: [Key: Entry] = [:]
    private var uses: UInt64 = 0

    /// The answer cached for `key`, and the seconds it has left (nil for a Hosts-file entry);
    /// nil when there is none or it has expired (it is dropped then).
    mutating func lookup(_ key: Key, now: UInt64) -> (answer: Answer, secondsLeft: UInt64?)? {
        guard let index = entries.index(forKey: key) else { return nil }
        let entry = entries.values[index]
        if let expires = entry.expires, expires <= now {
            entries.remove(at: index)
            return nil
        }
        uses &+= 1
        entries.values[index].lastUse = uses
        return (entry.answer, entry.expires.map { ($0 - now) / 1_000_000_000 })
    }

    /// Caches what `message` answered to `question`, by the rules above; `records` are those
    /// the resolver took from its answer section (the CNAME chain and what it ends in).
    mutating func store(_ message: DNSMessage, records: [DNSRecord], for key: Key, now: UInt64) {
        let seconds: UInt64
        let answer: Answer
        if !records.isEmpty {
            let least = records.reduce(UInt32.max) { min($0, $1.ttl) }
            guard least > 0 else { return }
            seconds = min(UInt64(least), Self.longestPositive)
            answer = .records(records)
        } else {
            guard let soa = message.authority.first(where: { $0.type == .soa }),
                case .soa(_, _, _, _, _, _, let minimum) = soa.data
            else { return }
            seconds = min(UInt64(min(soa.ttl, minimum)), Self.longestNegative)
            guard seconds > 0 else { return }
            // NXDOMAIN and no data alike: MacTCP's authNameErr (SPEC §6).
            answer = .negative(rtnCode: MacTCPError.authNameErr.code)
        }
        insert(key, Entry(answer: answer, expires: now + seconds * 1_000_000_000, lastUse: 0))
    }

    /// A Hosts-file entry: never expires, never evicted.
    mutating func preload(_ key: Key, records: [DNSRecord]) {
        insert(key, Entry(answer: .records(records), expires: nil, lastUse: 0))
    }

    private mutating func insert(_ key: Key, _ entry: Entry) {
        if entries[key] == nil && entries.count >= Self.capacity { evict() }
        uses &+= 1
        var entry = entry
        entry.lastUse = uses
        entries[key] = entry
    }

    /// Drops the eighth of the entries used least recently (Hosts-file entries stay).
    private mutating func evict() {
        let expiring = entries.filter { $0.value.expires != nil }
        let victims = expiring.sorted { $0.value.lastUse < $1.value.lastUse }.prefix(max(1, Self.capacity / 8))
        for (key, _) in victims { entries[key] = nil }
    }

    /// Drops everything but the Hosts-file entries (the server list changed).
    mutating func flush() {
        entries = entries.filter { $0.value.expires == nil }
    }
}
