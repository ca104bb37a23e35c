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

/// A domain name: its labels, as they came (case kept), without the root's empty label.
struct DNSName: Hashable, Sendable, CustomStringConvertible {
    let labels: [[UInt8]]

    static let root = DNSName(labels: [])

    init(labels: [[UInt8]]) { self.labels = labels }

    /// A name from text (`example.org` or `example.org.`); nil when a label is empty or over
    /// 63 bytes, or the name over 253 characters (255 bytes on the wire).
    init?(_ text: String) {
        var body = Substring(text)
        if body.hasSuffix(".") { body = body.dropLast() }
        if body.isEmpty {
            self = .root
            return
        }
        let labels = body.split(separator: ".", omittingEmptySubsequences: false).map { Array($0.utf8) }
        guard body.utf8.count <= 253, labels.allSatisfy({ (1...63).contains($0.count) }) else { return nil }
        self.labels = labels
    }

    /// Dotted text without the trailing dot (the root is `.`).
    var description: String {
        labels.isEmpty ? "." : labels.map { String(decoding: $0, as: UTF8.self) }.joined(separator: ".")
    }

    /// The name compared as DNS compares names: ASCII letters without regard to case.
    var canonical: [[UInt8]] {
        labels.map { $0.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 } }
    }

    func sameName(as other: DNSName) -> Bool { canonical == other.canonical }

    /// The name with each ASCII letter's case chosen at random (DNS 0x20, an answer's
    /// question must then match byte for byte).
    func withRandomCase() -> DNSName {
        var generator = SystemRandomNumberGenerator()
        return DNSName(
            labels: labels.map { label in
                label.map { byte in
                    let letter = (byte | 0x20) >= 0x61 && (byte | 0x20) <= 0x7A
                    return letter ? (Bool.random(using: &generator) ? byte | 0x20 : byte & ~0x20) : byte
                }
            })
    }
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
        writer.u16(id)
        var flags = UInt16(opcode & 0x0F) << 11 | UInt16(responseCode & 0x0F)
        if isResponse { flags |= 0x8000 }
        if authoritative { flags |= 0x0400 }
        if truncated { flags |= 0x0200 }
        if recursionDesired { flags |= 0x0100 }
        if recursionAvailable { flags |= 0x0080 }
        writer.u16(flags)
        for count in [questions.count, answers.count, authority.count, additional.count] { writer.u16(UInt16(clamping: count)) }
        for question in questions {
            writer.name(question.name)
            writer.u16(question.type.rawValue)
            writer.u16(question.dnsClass)
        }
        for record in answers + authority + additional { writer.record(record) }
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
        let counts = [try reader.u16(), try reader.u16(), try reader.u16(), try reader.u16()].map(Int.init)
        // Each question takes at least 5 bytes and each record at least 11: a count that
        // cannot fit is a lie, refused before anything is allocated for it.
        guard counts[0] * 5 + (counts[1] + counts[2] + counts[3]) * 11 <= reader.remaining else {
            throw DNSFormatError("the header's counts promise more records than the message holds")
        }
        for _ in 0..<counts[0] {
            let name = try reader.name()
            questions.append(Question(name: name, type: DNSRecordType(rawValue: try reader.u16()), dnsClass: try reader.u16()))
        }
        for _ in 0..<counts[1] { answers.append(try reader.record()) }
        for _ in 0..<counts[2] { authority.append(try reader.record()) }
        for _ in 0..<counts[3] { additional.append(try reader.record()) }
    }

    init(id: UInt16) { self.id = id }
}

/// Writes a message's fields in network byte order.
private struct DNSWriter {
    var bytes: [UInt8] = []

    mutating func u16(_ value: UInt16) { bytes += [UInt8(value >> 8), UInt8(value & 0xFF)] }
    mutating func u32(_ value: UInt32) {
        u16(UInt16(value >> 16))
        u16(UInt16(value & 0xFFFF))
    }

    mutating func name(_ name: DNSName) {
        for label in name.labels {
            bytes.append(UInt8(label.count))
            bytes += label
        }
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
        var labels: [[UInt8]] = []
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
                    return DNSName(labels: labels)
                }
                let count = Int(byte)
                guard position + count <= bytes.count else { throw DNSFormatError("a label runs past the end of the message") }
                length += count + 1
                guard length <= 255 else { throw DNSFormatError("a name is longer than 255 bytes") }
                labels.append(Array(bytes[position..<position + count]))
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
