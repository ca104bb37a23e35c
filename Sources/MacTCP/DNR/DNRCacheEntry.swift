// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// One record in the resolver's cache, as ``DNR/enumCache()`` lists it: MacTCP's
/// `cacheEntryRecord`.
public struct DNRCacheEntry: Sendable, Equatable, CustomStringConvertible {
    /// The record's owner (or, for a negative entry, the name asked), without the trailing dot.
    public let name: String
    /// The record's type (for a negative entry, the type asked).
    public let type: DNSRecordType
    /// How long the entry has left; for a Hosts-file entry, which never expires, the TTL the
    /// file gives.
    public let ttlLeft: Duration
    /// The record's data in master-file text; empty for a negative entry.
    public let data: String
    /// Whether the entry records that the name, or its record of ``type``, does not exist.
    public let isNegative: Bool
    /// The code a negative entry answers with (`authNameErr`); 0 for a record.
    public let rtnCode: Int
    /// Whether the entry came from MacTCP's Hosts file (``DNR/init(hostsFile:configuration:)``).
    public let fromHostsFile: Bool

    /// The entry as a master-file line, `; negative` for a negative one.
    public var description: String {
        let head = "\(name). \(ttlLeft.components.seconds) IN \(type)"
        return isNegative ? "\(head) ; negative (\(MacTCPError(code: rtnCode).name))" : "\(head) \(data)"
    }
}

extension DNRCache {
    /// The entries that have not expired at `now`, one per record (a negative entry as one),
    /// in name order.
    func listing(now: UInt64) -> [DNRCacheEntry] {
        var listed: [DNRCacheEntry] = []
        var seen = Set<String>()
        for (key, entry) in entries {
            if let expires = entry.expires, expires <= now { continue }
            let secondsLeft = entry.expires.map { Int64(($0 - now) / 1_000_000_000) }
            let fromFile = entry.expires == nil
            switch entry.answer {
            case .records(let records):
                for record in records {
                    let item = DNRCacheEntry(
                        name: record.name.description, type: record.type, ttlLeft: .seconds(secondsLeft ?? Int64(record.ttl)),
                        data: record.data.masterFileText, isNegative: false, rtnCode: 0, fromHostsFile: fromFile)
                    if seen.insert("\(item.name.lowercased()) \(item.type) \(item.data)").inserted { listed.append(item) }
                }
            case .negative(let code):
                listed.append(
                    DNRCacheEntry(
                        name: key.name.description, type: DNSRecordType(rawValue: key.type),
                        ttlLeft: .seconds(secondsLeft ?? 0), data: "", isNegative: true, rtnCode: code, fromHostsFile: fromFile))
            }
        }
        return listed.sorted { ($0.name.lowercased(), $0.type.rawValue, $0.data) < ($1.name.lowercased(), $1.type.rawValue, $1.data) }
    }
}
