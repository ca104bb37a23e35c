// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The name resolver (MacTCP's `AddressXlation`): DNS messages as RFC 1035 defines them, read
// and written without trusting a byte of what arrives. It calls nothing: the resolver's
// transport and cache, which come with it, are its users.

/// A DNS record type (RFC 1035 §3.2.2 and later RFCs), by its number: what
/// ``DNR/query(_:type:)`` asks for and ``DNRCacheEntry`` lists.
public struct DNSRecordType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The type's number on the wire (A is 1).
    public let rawValue: UInt16

    /// The type with number `rawValue`.
    ///
    /// - Parameter rawValue: The type's number.
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// An IPv4 address (1).
    public static let a = DNSRecordType(rawValue: 1)
    /// A name server (2).
    public static let ns = DNSRecordType(rawValue: 2)
    /// An alias to the canonical name (5).
    public static let cname = DNSRecordType(rawValue: 5)
    /// A zone's start of authority (6).
    public static let soa = DNSRecordType(rawValue: 6)
    /// A domain name pointer, for reverse lookups (12).
    public static let ptr = DNSRecordType(rawValue: 12)
    /// A host's CPU and operating system (13), MacTCP's `HInfo`.
    public static let hinfo = DNSRecordType(rawValue: 13)
    /// A mail exchange (15), MacTCP's `MXInfo`.
    public static let mx = DNSRecordType(rawValue: 15)
    /// Text strings (16).
    public static let txt = DNSRecordType(rawValue: 16)
    /// An IPv6 address (28).
    public static let aaaa = DNSRecordType(rawValue: 28)
    /// A service location (33).
    public static let srv = DNSRecordType(rawValue: 33)
    /// EDNS0's pseudo-record (41); never asked for.
    static let opt = DNSRecordType(rawValue: 41)

    private static let names: [UInt16: String] = [
        1: "A", 2: "NS", 5: "CNAME", 6: "SOA", 12: "PTR", 13: "HINFO", 15: "MX", 16: "TXT", 28: "AAAA", 33: "SRV", 41: "OPT",
    ]

    /// The type's mnemonic, or `TYPEn` (RFC 3597) for one without.
    public var description: String { Self.names[rawValue] ?? "TYPE\(rawValue)" }

    /// The type named by a mnemonic (`"MX"`, case-insensitive) or `TYPEn`.
    ///
    /// - Parameter mnemonic: The type's name.
    public init?(mnemonic: String) {
        let upper = mnemonic.uppercased()
        if let (value, _) = Self.names.first(where: { $0.value == upper }), value != 41 {
            self.init(rawValue: value)
        } else if upper.hasPrefix("TYPE"), let value = UInt16(upper.dropFirst(4)) {
            self.init(rawValue: value)
        } else {
            return nil
        }
    }
}

/// A response code of a DNS message's header (RFC 1035 §4.1.1).
enum DNSResponseCode: UInt8, Sendable, CustomStringConvertible {
    case noError = 0
    case formatError = 1
    case serverFailure = 2
    case nameError = 3
    case notImplemented = 4
    case refused = 5

    /// The mnemonic of RFC 6895 (`SERVFAIL`, `NXDOMAIN`, …).
    var description: String {
        ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"][Int(rawValue)]
    }
}

/// What a malformed message is: always a reason, never a crash.
struct DNSFormatError: Error, Equatable, CustomStringConvertible {
    let reason: String
    init(_ reason: String) { self.reason = reason }
    var description: String { reason }
}

/// A domain name in wire form (each label as its length byte and its bytes, case kept,
/// without the root's zero byte), so that it is compared, hashed, joined and written
/// without being taken apart.
struct DNSName: Hashable, Sendable, CustomStringConvertible {
    /// The labels in wire form, without the terminating zero (empty for the root).
    let wire: [UInt8]

    static let root = DNSName(wire: [])

    /// The longest name: 255 bytes on the wire with the root's zero (RFC 1035 §2.3.4).
    static let longestWire = 254

    init(wire: [UInt8]) { self.wire = wire }

    init(labels: [[UInt8]]) {
        var wire: [UInt8] = []
        for label in labels {
            wire.append(UInt8(truncatingIfNeeded: label.count))
            wire += label
        }
        self.wire = wire
    }

    /// A name from text (`example.org` or `example.org.`); nil when a label is empty or over
    /// 63 bytes, or the name over 253 characters (255 bytes on the wire).
    init?(_ text: String) {
        var text = text
        guard let wire = text.withUTF8({ Self.wire(parsing: $0, hostName: false) }) else { return nil }
        self.wire = wire
    }

    /// A host name from text: as `init?(_:)`, and only ASCII letters, digits, `-`, `_`
    /// and `.` (what the resolver takes, SPEC §6).
    init?(hostName text: String) {
        var text = text
        guard let wire = text.withUTF8({ Self.wire(parsing: $0, hostName: true) }) else { return nil }
        self.wire = wire
    }

    /// The wire form of dotted text in one pass, or nil (see `init?(_:)`).
    private static func wire(parsing text: UnsafeBufferPointer<UInt8>, hostName: Bool) -> [UInt8]? {
        var end = text.count
        if end > 0, text[end - 1] == UInt8(ascii: ".") { end -= 1 }
        if end == 0 { return [] }
        guard end <= 253 else { return nil }
        var ok = true
        let wire = [UInt8](unsafeUninitializedCapacity: end + 1) { buffer, count in
            var lengthAt = 0
            var length = 0
            for index in 0..<end {
                let byte = text[index]
                if byte == UInt8(ascii: ".") {
                    if length == 0 || length > 63 { ok = false }
                    buffer[lengthAt] = UInt8(truncatingIfNeeded: length)
                    lengthAt = index + 1
                    length = 0
                } else {
                    if hostName && !isHostNameByte(byte) { ok = false }
                    buffer[index + 1] = byte
                    length += 1
                }
            }
            if length == 0 || length > 63 { ok = false }
            buffer[lengthAt] = UInt8(truncatingIfNeeded: length)
            count = end + 1
        }
        return ok ? wire : nil
    }

    /// The labels, each as its bytes (case kept).
    var labels: [[UInt8]] {
        var labels: [[UInt8]] = []
        forEachLabel { labels.append(Array(wire[$0])) }
        return labels
    }

    var labelCount: Int {
        var count = 0
        forEachLabel { _ in count += 1 }
        return count
    }

    var isRoot: Bool { wire.isEmpty }

    private func forEachLabel(_ body: (Range<Int>) -> Void) {
        var position = 0
        while position < wire.count {
            let length = Int(wire[position])
            body(position + 1..<position + 1 + length)
            position += 1 + length
        }
    }

    /// Dotted text without the trailing dot (the root is `.`).
    var description: String {
        if wire.isEmpty { return "." }
        return String(unsafeUninitializedCapacity: wire.count - 1) { text in
            var position = 0
            while position < wire.count {
                let length = Int(wire[position])
                if position > 0 { text[position - 1] = UInt8(ascii: ".") }
                for index in position + 1..<position + 1 + length { text[index - 1] = wire[index] }
                position += 1 + length
            }
            return wire.count - 1
        }
    }

    /// The name as DNS compares names, ASCII letters without regard to case: the name in
    /// lower case (the cache's key).
    var canonical: DNSName {
        DNSName(
            wire: [UInt8](unsafeUninitializedCapacity: wire.count) { lowered, count in
                for index in wire.indices { lowered[index] = Self.lowercased(wire[index]) }
                count = wire.count
            })
    }

    /// Hashes the wire bytes at once, not byte by byte (names key the cache and the tables).
    func hash(into hasher: inout Hasher) {
        wire.withUnsafeBytes { hasher.combine(bytes: $0) }
    }

    func sameName(as other: DNSName) -> Bool {
        wire.count == other.wire.count && zip(wire, other.wire).allSatisfy { Self.lowercased($0) == Self.lowercased($1) }
    }

    /// Whether the last label is `label` (lower case), as in `foo.localhost`.
    func endsWith(label: String) -> Bool {
        var last = 0..<0
        forEachLabel { last = $0 }
        let bytes = label.utf8
        return last.count == bytes.count && zip(wire[last], bytes).allSatisfy { Self.lowercased($0) == $1 }
    }

    /// `self` followed by `suffix`'s labels, or nil when the result is too long.
    func appending(_ suffix: DNSName) -> DNSName? {
        wire.count + suffix.wire.count <= Self.longestWire ? DNSName(wire: wire + suffix.wire) : nil
    }

    /// The name without its first label (nil for the root).
    var parent: DNSName? {
        guard let first = wire.first else { return nil }
        return DNSName(wire: Array(wire[(Int(first) + 1)...]))
    }

    /// The name with each ASCII letter's case chosen at random (DNS 0x20, an answer's
    /// question must then match byte for byte).
    func withRandomCase() -> DNSName {
        var generator = SystemRandomNumberGenerator()
        var randomBits: UInt64 = 0
        var bitsLeft = 0
        var position = 0
        var bytes = wire
        while position < bytes.count {
            let length = Int(bytes[position])
            for index in position + 1..<position + 1 + length where (bytes[index] | 0x20) >= 0x61 && (bytes[index] | 0x20) <= 0x7A {
                if bitsLeft == 0 {
                    randomBits = generator.next()
                    bitsLeft = 64
                }
                bytes[index] = randomBits & 1 == 1 ? bytes[index] | 0x20 : bytes[index] & ~0x20
                randomBits >>= 1
                bitsLeft -= 1
            }
            position += 1 + length
        }
        return DNSName(wire: bytes)
    }

    @inline(__always)
    static func isHostNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "-"), UInt8(ascii: "_"):
            return true
        default:
            return false
        }
    }

    @inline(__always)
    static func lowercased(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }
}

/// One resource record: its owner, type, class, TTL and data, decoded for the types the
/// resolver uses and kept as bytes for the others.
struct DNSRecord: Sendable, Equatable {
    enum Data: Sendable, Equatable {
        case a(UInt32)
        case aaaa([UInt8])
        case name(DNSName)  // CNAME, PTR, NS
        case mx(preference: UInt16, exchange: DNSName)
        case txt([[UInt8]])
        case srv(priority: UInt16, weight: UInt16, port: UInt16, target: DNSName)
        case hinfo(cpu: [UInt8], os: [UInt8])
        case soa(mname: DNSName, rname: DNSName, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32)
        case other([UInt8])
    }

    let name: DNSName
    let type: DNSRecordType
    let dnsClass: UInt16
    let ttl: UInt32
    let data: Data
}

/// A DNS message: the header's fields, the question and the three record sections.
struct DNSMessage: Sendable, Equatable {
    struct Question: Sendable, Equatable {
        let name: DNSName
        let type: DNSRecordType
        let dnsClass: UInt16
    }

    var id: UInt16
    var isResponse = false
    var opcode: UInt8 = 0
    var authoritative = false
    var truncated = false
    var recursionDesired = true
    var recursionAvailable = false
    var responseCode: UInt8 = 0
    var questions: [Question] = []
    var answers: [DNSRecord] = []
    var authority: [DNSRecord] = []
    var additional: [DNSRecord] = []

    static let internetClass: UInt16 = 1

    /// A recursive query for `name` and `type`, with an EDNS0 OPT record advertising
    /// `udpSize` bytes (nil: without EDNS0).
    static func query(id: UInt16, name: DNSName, type: DNSRecordType, udpSize: UInt16?) -> DNSMessage {
        var message = DNSMessage(id: id)
        message.questions = [Question(name: name, type: type, dnsClass: internetClass)]
        if let udpSize {
            // RFC 6891 §6.1.2: the OPT record's class is the payload size; TTL and data 0.
            message.additional = [DNSRecord(name: .root, type: .opt, dnsClass: udpSize, ttl: 0, data: .other([]))]
        }
        return message
    }

    /// The response code with the EDNS0 extension (RFC 6891: the OPT TTL's high byte).
    var extendedResponseCode: Int {
        let high = additional.first { $0.type == .opt }.map { Int($0.ttl >> 24) } ?? 0
        return high << 4 | Int(responseCode)
    }

    /// The message on the wire. Names are written uncompressed (a query holds one name).
    func encoded() -> [UInt8] {
        var writer = DNSWriter()
        writer.bytes.reserveCapacity(512)
        writer.u16(id)
        var flags = UInt16(opcode & 0x0F) << 11 | UInt16(responseCode & 0x0F)
        if isResponse { flags |= 0x8000 }
        if authoritative { flags |= 0x0400 }
        if truncated { flags |= 0x0200 }
        if recursionDesired { flags |= 0x0100 }
        if recursionAvailable { flags |= 0x0080 }
        writer.u16(flags)
        writer.u16(UInt16(clamping: questions.count))
        writer.u16(UInt16(clamping: answers.count))
        writer.u16(UInt16(clamping: authority.count))
        writer.u16(UInt16(clamping: additional.count))
        for question in questions {
            writer.name(question.name)
            writer.u16(question.type.rawValue)
            writer.u16(question.dnsClass)
        }
        for section in [answers, authority, additional] {
            for record in section { writer.record(record) }
        }
        return writer.bytes
    }

    /// Reads a message; throws on anything malformed (a name's pointer that loops or points
    /// past the end, a count that promises more than there is, data longer than its record).
    init(decoding bytes: [UInt8]) throws(DNSFormatError) {
        var reader = DNSReader(bytes)
        id = try reader.u16()
        let flags = try reader.u16()
        isResponse = flags & 0x8000 != 0
        opcode = UInt8(flags >> 11 & 0x0F)
        authoritative = flags & 0x0400 != 0
        truncated = flags & 0x0200 != 0
        recursionDesired = flags & 0x0100 != 0
        recursionAvailable = flags & 0x0080 != 0
        responseCode = UInt8(flags & 0x0F)
        let questionCount = Int(try reader.u16())
        let answerCount = Int(try reader.u16())
        let authorityCount = Int(try reader.u16())
        let additionalCount = Int(try reader.u16())
        // Each question takes at least 5 bytes and each record at least 11: a count that
        // cannot fit is a lie, refused before anything is allocated for it.
        guard questionCount * 5 + (answerCount + authorityCount + additionalCount) * 11 <= reader.remaining else {
            throw DNSFormatError("the header's counts promise more records than the message holds")
        }
        questions.reserveCapacity(questionCount)
        for _ in 0..<questionCount {
            let name = try reader.name()
            questions.append(Question(name: name, type: DNSRecordType(rawValue: try reader.u16()), dnsClass: try reader.u16()))
        }
        answers.reserveCapacity(answerCount)
        for _ in 0..<answerCount { answers.append(try reader.record()) }
        authority.reserveCapacity(authorityCount)
        for _ in 0..<authorityCount { authority.append(try reader.record()) }
        additional.reserveCapacity(additionalCount)
        for _ in 0..<additionalCount { additional.append(try reader.record()) }
    }

    init(id: UInt16) { self.id = id }
}

/// Writes a message's fields in network byte order.
private struct DNSWriter {
    var bytes: [UInt8] = []

    mutating func u16(_ value: UInt16) {
        bytes.append(UInt8(value >> 8))
        bytes.append(UInt8(value & 0xFF))
    }
    mutating func u32(_ value: UInt32) {
        u16(UInt16(value >> 16))
        u16(UInt16(value & 0xFFFF))
    }

    mutating func name(_ name: DNSName) {
        bytes += name.wire
        bytes.append(0)
    }

    mutating func characterString(_ string: [UInt8]) {
        bytes.append(UInt8(min(string.count, 255)))
        bytes += string.prefix(255)
    }

    mutating func record(_ record: DNSRecord) {
        name(record.name)
        u16(record.type.rawValue)
        u16(record.dnsClass)
        u32(record.ttl)
        let lengthAt = bytes.count
        u16(0)
        switch record.data {
        case .a(let address): u32(address)
        case .aaaa(let address): bytes += address
        case .name(let target): name(target)
        case .mx(let preference, let exchange):
            u16(preference)
            name(exchange)
        case .txt(let strings): for string in strings { characterString(string) }
        case .srv(let priority, let weight, let port, let target):
            u16(priority)
            u16(weight)
            u16(port)
            name(target)
        case .hinfo(let cpu, let os):
            characterString(cpu)
            characterString(os)
        case .soa(let mname, let rname, let serial, let refresh, let retry, let expire, let minimum):
            name(mname)
            name(rname)
            for value in [serial, refresh, retry, expire, minimum] { u32(value) }
        case .other(let data): bytes += data
        }
        let length = UInt16(clamping: bytes.count - lengthAt - 2)
        bytes[lengthAt] = UInt8(length >> 8)
        bytes[lengthAt + 1] = UInt8(length & 0xFF)
    }
}

/// Reads a message's fields, checking every length against what is there.
private struct DNSReader {
    let bytes: [UInt8]
    private(set) var offset = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func u8() throws(DNSFormatError) -> UInt8 {
        guard offset < bytes.count else { throw DNSFormatError("the message ends in the middle of a field") }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func u16() throws(DNSFormatError) -> UInt16 {
        UInt16(try u8()) << 8 | UInt16(try u8())
    }

    mutating func u32() throws(DNSFormatError) -> UInt32 {
        UInt32(try u16()) << 16 | UInt32(try u16())
    }

    mutating func take(_ count: Int) throws(DNSFormatError) -> [UInt8] {
        guard count >= 0, count <= remaining else { throw DNSFormatError("a field runs past the end of the message") }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// A name, following compression pointers (RFC 1035 §4.1.4): each pointer must point
    /// before the place it was read at, so that no chain of them can loop.
    mutating func name() throws(DNSFormatError) -> DNSName {
        var wire: [UInt8] = []
        wire.reserveCapacity(48)  // most names: one allocation
        var length = 1
        var position = offset
        var limit = offset  // a pointer must point before this
        var followed = false
        while true {
            guard position < bytes.count else { throw DNSFormatError("a name runs past the end of the message") }
            let byte = bytes[position]
            switch byte & 0xC0 {
            case 0x00:
                position += 1
                if byte == 0 {
                    if !followed { offset = position }
                    return DNSName(wire: wire)
                }
                let count = Int(byte)
                guard position + count <= bytes.count else { throw DNSFormatError("a label runs past the end of the message") }
                length += count + 1
                guard length <= 255 else { throw DNSFormatError("a name is longer than 255 bytes") }
                wire.append(byte)
                wire += bytes[position..<position + count]
                position += count
            case 0xC0:
                guard position + 1 < bytes.count else { throw DNSFormatError("a compression pointer is cut off") }
                let target = Int(byte & 0x3F) << 8 | Int(bytes[position + 1])
                guard target < limit else { throw DNSFormatError("a compression pointer does not point backwards") }
                if !followed { offset = position + 2 }
                followed = true
                limit = target
                position = target
            default:
                throw DNSFormatError("a label has the reserved type bits \(byte >> 6)")
            }
        }
    }

    mutating func characterString() throws(DNSFormatError) -> [UInt8] {
        try take(Int(try u8()))
    }

    mutating func record() throws(DNSFormatError) -> DNSRecord {
        let owner = try name()
        let type = DNSRecordType(rawValue: try u16())
        let dnsClass = try u16()
        let ttl = try u32()
        let length = Int(try u16())
        guard length <= remaining else { throw DNSFormatError("a \(type) record's data runs past the end of the message") }
        let end = offset + length
        let data: DNSRecord.Data
        switch type {
        case .a:
            guard length == 4 else { throw DNSFormatError("an A record's data is \(length) bytes, not 4") }
            data = .a(try u32())
        case .aaaa:
            guard length == 16 else { throw DNSFormatError("an AAAA record's data is \(length) bytes, not 16") }
            data = .aaaa(try take(16))
        case .cname, .ptr, .ns:
            data = .name(try name())
        case .mx:
            data = .mx(preference: try u16(), exchange: try name())
        case .txt:
            var strings: [[UInt8]] = []
            while offset < end { strings.append(try characterString()) }
            data = .txt(strings)
        case .srv:
            data = .srv(priority: try u16(), weight: try u16(), port: try u16(), target: try name())
        case .hinfo:
            data = .hinfo(cpu: try characterString(), os: try characterString())
        case .soa:
            data = .soa(
                mname: try name(), rname: try name(), serial: try u32(), refresh: try u32(), retry: try u32(),
                expire: try u32(), minimum: try u32())
        default:
            data = .other(try take(length))
        }
        guard offset == end else { throw DNSFormatError("a \(type) record's data does not match its length (\(length) bytes)") }
        return DNSRecord(name: owner, type: type, dnsClass: dnsClass, ttl: ttl, data: data)
    }
}
