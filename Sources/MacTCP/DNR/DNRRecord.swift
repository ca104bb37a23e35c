// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// One record of an answer, typed: what ``DNRQuery/records`` holds.
public struct DNRRecord: Sendable, Equatable, CustomStringConvertible {
    /// A record's data, decoded for the types the resolver knows.
    public enum Value: Sendable, Equatable {
        /// An IPv4 address in host byte order (A).
        case a(UInt32)
        /// An IPv6 address, its 16 bytes in network order (AAAA).
        case aaaa([UInt8])
        /// The canonical name an alias stands for (CNAME).
        case cname(String)
        /// The name an address's reverse name points to (PTR).
        case ptr(String)
        /// A name server of the zone (NS).
        case ns(String)
        /// A mail exchange and its preference, lower first (MX).
        case mx(preference: UInt16, exchange: String)
        /// The strings of a TXT record, as bytes (they need not be UTF-8).
        case txt([[UInt8]])
        /// A service location (SRV).
        case srv(priority: UInt16, weight: UInt16, port: UInt16, target: String)
        /// A host's CPU type and operating system (HINFO).
        case hinfo(cpu: String, os: String)
        /// A zone's start of authority (SOA).
        case soa(mname: String, rname: String, serial: UInt32, refresh: UInt32, retry: UInt32, expire: UInt32, minimum: UInt32)
        /// The data of a type the resolver does not decode.
        case other([UInt8])
    }

    /// The record's owner name, without the trailing dot.
    public let name: String
    /// The record's type.
    public let type: DNSRecordType
    /// How long the record may be kept, as the server (or the cache, counting down) gave it.
    public let ttl: Duration
    /// The record's data.
    public let value: Value
    /// The data in master-file text (RFC 1035 §5): `10.0.0.1`, `10 mx1.example.`, `"text"`.
    public let text: String

    /// The record as a master-file line: `one.test. 300 IN A 10.0.0.1`.
    public var description: String {
        "\(name == "." ? "" : name). \(ttl.components.seconds) IN \(type) \(text)"
    }

    init(_ record: DNSRecord, ttl seconds: UInt32? = nil) {
        name = record.name.description
        type = record.type
        ttl = .seconds(Int64(seconds ?? record.ttl))
        text = record.data.masterFileText
        switch record.data {
        case .a(let address): value = .a(address)
        case .aaaa(let bytes): value = .aaaa(bytes)
        case .name(let target):
            let target = target.description
            value = record.type == .cname ? .cname(target) : record.type == .ptr ? .ptr(target) : .ns(target)
        case .mx(let preference, let exchange): value = .mx(preference: preference, exchange: exchange.description)
        case .txt(let strings): value = .txt(strings)
        case .srv(let priority, let weight, let port, let target):
            value = .srv(priority: priority, weight: weight, port: port, target: target.description)
        case .hinfo(let cpu, let os):
            value = .hinfo(cpu: String(decoding: cpu, as: UTF8.self), os: String(decoding: os, as: UTF8.self))
        case .soa(let mname, let rname, let serial, let refresh, let retry, let expire, let minimum):
            value = .soa(
                mname: mname.description, rname: rname.description, serial: serial, refresh: refresh, retry: retry, expire: expire,
                minimum: minimum)
        case .other(let bytes): value = .other(bytes)
        }
    }
}

extension DNSRecord.Data {
    /// The data as a master file writes it: names absolute (with the trailing dot), strings
    /// quoted with `\"`, `\\` and `\DDD` for bytes outside printable ASCII, unknown data in
    /// RFC 3597's `\# length hex`.
    var masterFileText: String {
        func absolute(_ name: DNSName) -> String { name.isRoot ? "." : name.description + "." }
        func quoted(_ bytes: [UInt8]) -> String {
            var text = "\""
            for byte in bytes {
                switch byte {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): text += "\\" + String(UnicodeScalar(byte))
                case 0x20...0x7E: text.unicodeScalars.append(UnicodeScalar(byte))
                default:
                    let digits = String(byte)
                    text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
                }
            }
            return text + "\""
        }
        switch self {
        case .a(let address): return IPv4.string(address)
        case .aaaa(let bytes): return IPv6Text.string(bytes)
        case .name(let target): return absolute(target)
        case .mx(let preference, let exchange): return "\(preference) \(absolute(exchange))"
        case .txt(let strings): return strings.map(quoted).joined(separator: " ")
        case .srv(let priority, let weight, let port, let target): return "\(priority) \(weight) \(port) \(absolute(target))"
        case .hinfo(let cpu, let os): return "\(quoted(cpu)) \(quoted(os))"
        case .soa(let mname, let rname, let serial, let refresh, let retry, let expire, let minimum):
            return "\(absolute(mname)) \(absolute(rname)) \(serial) \(refresh) \(retry) \(expire) \(minimum)"
        case .other(let bytes):
            let hex = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
            return "\\# \(bytes.count)" + (hex.isEmpty ? "" : " " + hex)
        }
    }
}
