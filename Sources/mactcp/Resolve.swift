// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser
import MacTCP
import Synchronization

/// `mactcp dnr`: the resolver's calls, like `dig +short` with MacTCP's names and codes.
struct Resolve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dnr",
        abstract: "Resolve a name with MacTCP's resolver (StrToAddr, AddrToName, HInfo, MXInfo, or any record type).",
        discussion: """
            Without --type, StrToAddr: the addresses, one per line (at most 4, as MacTCP). With \
            --type, every record of that type in master-file text, as `dig +short` prints them. \
            Exit status: 0 answered; 64 malformed name or arguments; 68 no such name or record \
            (authNameErr); 69 the servers failed (dnrErr); 75 no server answered (noAnsErr); \
            78 no name server (noNameServer).
            """
    )

    @Argument(help: "The host name (or dotted quad) to resolve.") var name: String?
    @Option(help: "The record type: A, AAAA, MX, HINFO, TXT, SRV, PTR, CNAME, NS, SOA or TYPEn.")
    var type: RecordType?
    @Option(help: "Translate an address into its name: IPv4 by AddrToName, IPv6 by a PTR query under ip6.arpa.")
    var reverse: Address?
    @Option(help: "A name server to ask: ADDRESS, ADDRESS:PORT or [IPV6]:PORT; repeatable. Default: /etc/resolv.conf's.")
    var server: [NameServer] = []
    @Option(help: "MacTCP's Hosts file (master-file lines) to open the resolver with.") var hostsFile: String?
    @Option(help: "Seconds to wait for each server, per attempt.") var timeout: Seconds?
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(help: "Afterwards, list what the resolver cached (EnumCache).") var cache = false

    func validate() throws {
        if name == nil && reverse == nil && !cache { throw ValidationError("give a NAME, --reverse ADDRESS or --cache") }
        if name != nil && reverse != nil { throw ValidationError("give a NAME or --reverse ADDRESS, not both") }
        if let timeout, timeout.value < 1 || timeout.value > 30 { throw ValidationError("--timeout must be 1…30 seconds") }
    }

    func run() throws {
        Console.json.store(json, ordering: .relaxed)
        var configuration = DNRConfiguration.system
        if !server.isEmpty { configuration.nameServers = server.map(\.text) }
        if let timeout { configuration.timeout = .seconds(timeout.value) }
        let dnr: DNR
        do {
            dnr = try DNR(hostsFile: hostsFile, configuration: configuration)
        } catch {
            throw failure(for: error, doing: "dnr")
        }
        for problem in dnr.hostsFileProblems { complain("mactcp: dnr: \(hostsFile ?? ""): \(problem)") }
        var object: [String] = []
        var status: ExitCode?
        do {
            if let name, let type {
                object = try ask(dnr.query(name, type: type.value), name: name, type: type.value)
            } else if let name {
                object = try show(dnr.strToAddr(name), name: name, call: "strToAddr")
            } else if case .v4(let address)? = reverse?.value {
                object = try show(dnr.addrToName(address), name: IPv4.string(address), call: "addrToName")
            } else if case .v6(let address)? = reverse?.value {
                object = try ask(dnr.query(Self.reverseName(address), type: .ptr), name: Self.reverseName(address), type: .ptr)
            }
        } catch {
            status = failure(for: error, doing: "dnr")
            if json, let error = error as? MacTCPError { object = Self.failed(error) }
        }
        if cache {
            let entries = dnr.enumCache()
            if json {
                let listed = entries.map { entry in
                    "{\"name\":\(jsonString(entry.name)),\"type\":\(jsonString("\(entry.type)")),"
                        + "\"ttlLeft\":\(entry.ttlLeft.components.seconds),\"data\":\(jsonString(entry.data)),"
                        + "\"negative\":\(entry.isNegative),\"hostsFile\":\(entry.fromHostsFile)}"
                }
                object.append("\"cache\":[" + listed.joined(separator: ",") + "]")
            } else {
                for entry in entries { print(Console.escaped(entry.description)) }
            }
        }
        if json { print("{" + object.joined(separator: ",") + "}") }
        if let status { throw status }
    }

    /// StrToAddr or AddrToName: the addresses, or the name.
    private func show(_ result: DNRResult, name: String, call: String) throws -> [String] {
        try result.wait()
        let lines = call == "addrToName" ? [result.cname + "."] : result.addresses.map(IPv4.string)
        if json {
            return [
                "\"call\":\(jsonString(call))", "\"name\":\(jsonString(name))", "\"rtnCode\":0",
                "\"cname\":\(jsonString(result.cname))", "\"cacheFault\":\(result.cacheFault)",
                call == "addrToName"
                    ? "\"hostName\":\(jsonString(result.cname))" : "\"addresses\":[" + lines.map(jsonString).joined(separator: ",") + "]",
            ]
        }
        for line in lines { print(Console.escaped(line)) }
        return []
    }

    /// Any record type: every record of it, in master-file text.
    private func ask(_ query: DNRQuery, name: String, type: DNSRecordType) throws -> [String] {
        let records = try query.wait().filter { $0.type == type }
        if json {
            let listed = records.map { record in
                "{\"name\":\(jsonString(record.name)),\"type\":\(jsonString("\(record.type)")),"
                    + "\"ttl\":\(record.ttl.components.seconds),\"data\":\(jsonString(record.text))}"
            }
            return [
                "\"call\":\"query\"", "\"name\":\(jsonString(name))", "\"type\":\(jsonString("\(type)"))", "\"rtnCode\":0",
                "\"cname\":\(jsonString(query.cname))", "\"cacheFault\":\(query.cacheFault)",
                "\"records\":[" + listed.joined(separator: ",") + "]",
            ]
        }
        for record in records { print(Console.escaped(record.text)) }
        return []
    }

    /// The name an IPv6 address's PTR record has (RFC 3596 §2.5): its 32 nibbles in reverse
    /// order under `ip6.arpa`.
    static func reverseName(_ address: IPv6Address) -> String {
        let nibbles = address.bytes.reversed().flatMap { [$0 & 0x0F, $0 >> 4] }
        return nibbles.map { String($0, radix: 16) }.joined(separator: ".") + ".ip6.arpa."
    }

    private static func failed(_ error: MacTCPError) -> [String] {
        ["\"rtnCode\":\(error.code)", "\"error\":\(jsonString(error.name))"]
    }
}

/// An IP address of either family (`10.0.0.1`, `2001:db8::1`).
struct Address: ExpressibleByArgument, Sendable {
    let value: IPAddress

    init?(argument: String) {
        guard let value = IPAddress(argument) else { return nil }
        self.value = value
    }
}

/// A record type by its mnemonic (`MX`) or `TYPEn`.
struct RecordType: ExpressibleByArgument, Sendable {
    let value: DNSRecordType

    init?(argument: String) {
        guard let value = DNSRecordType(mnemonic: argument) else { return nil }
        self.value = value
    }
}

/// A name server: `ADDRESS`, `ADDRESS:PORT`, an IPv6 address or `[IPV6]:PORT`.
struct NameServer: ExpressibleByArgument, Sendable {
    let text: String

    init?(argument: String) {
        var host = Substring(argument)
        var port: Substring?
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            let rest = host[host.index(after: close)...]
            guard rest.isEmpty || rest.hasPrefix(":") else { return nil }
            port = rest.isEmpty ? nil : rest.dropFirst()
            host = host[host.index(after: host.startIndex)..<close]
            guard IPAddress(String(host))?.isIPv6 == true else { return nil }
        } else if host.filter({ $0 == ":" }).count == 1, let colon = host.firstIndex(of: ":") {
            port = host[host.index(after: colon)...]
            host = host[..<colon]
            guard IPv4.address(String(host)) != nil else { return nil }
        } else {
            guard IPAddress(String(host)) != nil else { return nil }
        }
        if let port {
            guard let value = UInt16(port), value != 0 else { return nil }
        }
        text = argument
    }
}
