// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Testing

@testable import MacTCP

/// The cache's rules (TTLs, RFC 2308 negative caching, caps, the size bound), with the clock
/// passed in.
@Suite("units: the resolver's cache")
struct DNRCacheTests {
    static let second: UInt64 = 1_000_000_000
    let name = DNSName("www.example.org")!

    func record(_ ttl: UInt32, _ type: DNSRecordType = .a) -> DNSRecord {
        DNSRecord(name: name, type: type, dnsClass: 1, ttl: ttl, data: type == .a ? .a(0x0A00_0001) : .name(name))
    }

    func negative(soaTTL: UInt32, minimum: UInt32, code: UInt8 = 3) -> DNSMessage {
        var message = DNSMessage(id: 1)
        message.isResponse = true
        message.responseCode = code
        message.authority = [
            DNSRecord(
                name: DNSName("example.org")!, type: .soa, dnsClass: 1, ttl: soaTTL,
                data: .soa(mname: name, rname: name, serial: 1, refresh: 2, retry: 3, expire: 4, minimum: minimum))
        ]
        return message
    }

    @Test("a positive answer lives for its least TTL (the chain's too), at most a day; TTL 0 is not kept; names without case")
    func positive() {
        var cache = DNRCache()
        let key = DNRCache.Key(name, .a)
        cache.store(DNSMessage(id: 1), records: [record(300, .cname), record(60)], for: key, now: 0)
        #expect(cache.lookup(DNRCache.Key(DNSName("WWW.Example.ORG")!, .a), now: 10 * Self.second)?.secondsLeft == 50)
        #expect(cache.lookup(key, now: 60 * Self.second) == nil)
        cache.store(DNSMessage(id: 1), records: [record(0)], for: key, now: 0)
        #expect(cache.lookup(key, now: 0) == nil)
        cache.store(DNSMessage(id: 1), records: [record(999_999)], for: key, now: 0)
        #expect(cache.lookup(key, now: 0)?.secondsLeft == 86_400)
        #expect(cache.lookup(DNRCache.Key(name, .aaaa), now: 0) == nil)
    }

    @Test("a negative answer lives for min(SOA TTL, MINIMUM), at most an hour, as authNameErr; without an SOA it is not kept")
    func negativeAnswers() {
        var cache = DNRCache()
        let key = DNRCache.Key(name, .mx)
        cache.store(negative(soaTTL: 900, minimum: 120), records: [], for: key, now: 0)
        let found = cache.lookup(key, now: 0)
        #expect(found?.answer == .negative(rtnCode: MacTCPError.authNameErr.code) && found?.secondsLeft == 120)
        cache.store(negative(soaTTL: 30, minimum: 7200, code: 0), records: [], for: key, now: 0)
        #expect(cache.lookup(key, now: 0)?.secondsLeft == 30)
        cache.store(negative(soaTTL: 99_999, minimum: 99_999), records: [], for: key, now: 0)
        #expect(cache.lookup(key, now: 0)?.secondsLeft == 3600)
        var other = DNRCache()
        other.store(DNSMessage(id: 1), records: [], for: key, now: 0)
        #expect(other.lookup(key, now: 0) == nil)
    }

    @Test("at most 8,192 entries: the least recently used go first; Hosts-file entries never expire, never go; flush keeps them")
    func bound() {
        var cache = DNRCache()
        let pinned = DNRCache.Key(DNSName("pinned.example")!, .a)
        cache.preload(pinned, records: [record(5)])
        let keys = (0..<DNRCache.capacity).map { DNRCache.Key(DNSName("n\($0).example")!, .a) }
        for key in keys.dropLast() { cache.store(DNSMessage(id: 1), records: [record(600)], for: key, now: 0) }
        #expect(cache.entries.count == DNRCache.capacity)  // full
        _ = cache.lookup(keys[0], now: 0)  // the oldest, used again
        cache.store(DNSMessage(id: 1), records: [record(600)], for: keys[DNRCache.capacity - 1], now: 0)
        #expect(cache.entries.count <= DNRCache.capacity)
        #expect(cache.lookup(keys[0], now: 0) != nil)
        #expect(cache.lookup(keys[1], now: 0) == nil)  // the least recently used went
        #expect(cache.lookup(keys[DNRCache.capacity - 1], now: 0) != nil)
        #expect(cache.lookup(pinned, now: 1_000_000 * Self.second)?.secondsLeft == nil)
        cache.flush()
        #expect(cache.entries.count == 1 && cache.lookup(pinned, now: 0) != nil)
    }
}
