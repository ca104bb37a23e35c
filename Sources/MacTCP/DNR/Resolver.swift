// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Synchronization

/// The cache a resolver answers from, kept across reloads of the configuration.
final class DNRCacheStore: Sendable {
    let entries = Mutex(DNRCache())
}

/// The resolver's engine: one question (a name and a type) answered from the special names,
/// the hosts table, the cache and the servers, by the rules of SPEC §6. It blocks the calling
/// thread; the public resolver runs it on threads of its own.
final class Resolver: Sendable {
    /// A question's outcome: the answer's records and canonical name, or a MacTCP code.
    struct Outcome: Equatable {
        let canonicalName: String
        let records: [DNSRecord]
        /// Whether it came from the cache, the hosts table or a special name (no packet).
        let withoutPacket: Bool
    }

    let configuration: DNRConfiguration
    /// `/etc/hosts`: names (lowercased) and their addresses (IPv4 and IPv6 text).
    /// `/etc/hosts`: the addresses of each name, keyed by the name's canonical wire form.
    private let hosts: [DNSName: [String]]
    /// Where the hosts table and DNS are consulted, in order (`/etc/nsswitch.conf`).
    private let order: [SystemHosts.Source]
    /// MacTCP's Hosts file, when the resolver was opened with one: its servers for domains.
    private let hostsFile: MacTCPHostsFile?
    let cache: DNRCacheStore
    private let nextServer = Atomic<Int>(0)

    init(
        configuration: DNRConfiguration, hosts: [String: [String]] = [:], order: [SystemHosts.Source] = [.files, .dns],
        hostsFile: MacTCPHostsFile? = nil, cache: DNRCacheStore = DNRCacheStore()
    ) {
        self.configuration = configuration
        self.hosts = Dictionary(
            hosts.compactMap { name, addresses in DNSName(name).map { ($0.canonical, addresses) } }, uniquingKeysWith: +)
        self.order = order
        self.hostsFile = hostsFile
        self.cache = cache
        if let hostsFile {
            cache.entries.withLock { cache in
                for (key, records) in hostsFile.preloads { cache.preload(key, records: records) }
            }
        }
    }

    /// The servers to ask for `name`: the Hosts file's for the longest domain `name` is
    /// under, otherwise the configuration's (IPv4 and IPv6; a malformed entry is skipped).
    private func servers(for name: DNSName) -> [Endpoint] {
        if let delegated = hostsFile?.servers(for: name) {
            return delegated.map { Endpoint(.v4($0), port: 53) }
        }
        let servers = configuration.nameServers.compactMap { Endpoint(parsing: $0, defaultPort: 53) }
        guard configuration.rotate, servers.count > 1 else { return servers }
        let first = nextServer.add(1, ordering: .relaxed).oldValue % servers.count
        return Array(servers[first...] + servers[..<first])
    }

    /// Whether a query may need a server: some server is configured or delegated.
    private var hasServers: Bool {
        !configuration.nameServers.isEmpty || !(hostsFile?.servers.isEmpty ?? true)
    }

    /// Answers `text`'s `type` records: throws `nameSyntaxErr` for a malformed name; every
    /// other failure is the returned MacTCP error.
    func resolve(_ text: String, type: DNSRecordType, operation: String) throws(MacTCPError) -> Result<Outcome, MacTCPError> {
        // Never nil: with the network allowed every question is settled.
        try resolve(text, type: type, operation: operation, offline: false) ?? .failure(.dnrErr)
    }

    /// As ``resolve(_:type:operation:)``, or nil when `offline` and answering needs a packet
    /// (MacTCP's `cacheFault`: the answer comes later).
    func resolve(_ text: String, type: DNSRecordType, operation: String, offline: Bool) throws(MacTCPError)
        -> Result<Outcome, MacTCPError>?
    {
        let (name, absolute) = try DNRNames.validated(text, operation: operation)
        switch DNRNames.special(name) {
        case .loopback?:
            let records: [DNSRecord] =
                type == .a
                ? [DNSRecord(name: name, type: .a, dnsClass: 1, ttl: 0, data: .a(IPv4.loopback))]
                : type == .aaaa ? [DNSRecord(name: name, type: .aaaa, dnsClass: 1, ttl: 0, data: .aaaa(Self.ipv6Loopback))] : []
            return records.isEmpty
                ? .failure(Self.noSuchName(text, operation, why: "localhost has only A and AAAA records"))
                : .success(Outcome(canonicalName: name.description, records: records, withoutPacket: true))
        case .invalid?:
            return .failure(Self.noSuchName(text, operation, why: "names under .invalid never exist (RFC 6761)"))
        case .onion?:
            return .failure(Self.noSuchName(text, operation, why: "names under .onion are not resolved by DNS (RFC 7686)"))
        case nil:
            break
        }
        let candidates = DNRNames.candidates(name, absolute: absolute, configuration: configuration)
        var failures: [String] = []
        var firstFailure: MacTCPError?
        for candidate in candidates {
            guard let result = answer(candidate, type: type, operation: operation, offline: offline) else { return nil }
            switch result {
            case .success(let outcome):
                return .success(outcome)
            case .failure(let error):
                failures.append("\(candidate): \(error.detail ?? error.name)")
                // The error reported is the one for the name as typed (SPEC §6).
                if candidate.sameName(as: name) || firstFailure == nil { firstFailure = error }
                // Only "no such name" moves on to the next candidate.
                if error != .authNameErr { return .failure(error) }
            }
        }
        let error = firstFailure ?? MacTCPError.authNameErr
        return .failure(error.with(operation: operation, detail: failures.joined(separator: "; ")))
    }

    static let ipv6Loopback = [UInt8](repeating: 0, count: 15) + [1]

    private static func noSuchName(_ text: String, _ operation: String, why: String) -> MacTCPError {
        MacTCPError.authNameErr.with(operation: operation, detail: "\(text): \(why)")
    }

    /// One candidate name from the sources in `order`: the hosts table, then the cache and
    /// the servers (or the other way round). A source that fails hands the name to the next
    /// one; the last failure is the answer. nil: `offline`, and a packet is needed.
    private func answer(_ name: DNSName, type: DNSRecordType, operation: String, offline: Bool) -> Result<Outcome, MacTCPError>? {
        var failure: MacTCPError?
        let canonical = name.canonical
        for source in order {
            switch source {
            case .files:
                if let outcome = fromHosts(name, canonical, type: type) { return .success(outcome) }
            case .dns:
                let key = DNRCache.Key(canonical: canonical, type)
                guard let result = fromDNS(name, key: key, type: type, operation: operation, offline: offline) else { return nil }
                switch result {
                case .success: return result
                case .failure(let error): failure = error
                }
            }
        }
        return .failure(failure ?? MacTCPError.authNameErr.with(operation: operation, detail: "\(name): not in /etc/hosts"))
    }

    /// The hosts table's addresses for `name`, as records of `type` (A or AAAA).
    private func fromHosts(_ name: DNSName, _ canonical: DNSName, type: DNSRecordType) -> Outcome? {
        guard type == .a || type == .aaaa, let addresses = hosts[canonical] else { return nil }
        let records = addresses.compactMap { text -> DNSRecord? in
            if type == .a, let address = DNRNames.dottedQuad(text) {
                return DNSRecord(name: name, type: .a, dnsClass: 1, ttl: 0, data: .a(address))
            }
            if type == .aaaa, let bytes = IPv6Text.bytes(text) {
                return DNSRecord(name: name, type: .aaaa, dnsClass: 1, ttl: 0, data: .aaaa(bytes))
            }
            return nil
        }
        return records.isEmpty ? nil : Outcome(canonicalName: name.description, records: records, withoutPacket: true)
    }

    /// The cache, then the servers in turn.
    private func fromDNS(_ name: DNSName, key: DNRCache.Key, type: DNSRecordType, operation: String, offline: Bool)
        -> Result<Outcome, MacTCPError>?
    {
        let now = Deadline.monotonicNow()
        if let cached = cache.entries.withLock({ $0.lookup(key, now: now) }) {
            switch cached.answer {
            case .records(let records):
                let canonical = records.last?.name.description ?? name.description
                return .success(Outcome(canonicalName: canonical, records: records, withoutPacket: true))
            case .negative(let code):
                return .failure(MacTCPError(code: code).with(operation: operation, detail: "\(name): no such record (cached)"))
            }
        }
        guard hasServers else {
            return .failure(MacTCPError.noNameServer.with(operation: operation, detail: "no name server is configured"))
        }
        if offline { return nil }
        return ask(name, type: type, key: key, operation: operation)
    }

    /// Asks the servers, `attempts` rounds of each in turn, until one settles the question.
    private func ask(_ name: DNSName, type: DNSRecordType, key: DNRCache.Key, operation: String) -> Result<Outcome, MacTCPError> {
        let servers = self.servers(for: name)
        guard !servers.isEmpty else {
            return .failure(
                MacTCPError.noNameServer.with(
                    operation: operation, detail: "no name server can be reached: \(configuration.nameServers.joined(separator: ", "))"))
        }
        var tried: [String] = []
        var answered = false
        for attempt in 0..<configuration.attempts {
            for server in servers {
                switch exchange(name, type: type, server: server) {
                case .success(let message):
                    return conclude(message, name: name, type: type, key: key, operation: operation)
                case .failure(let failure):
                    answered = answered || failure.answered
                    tried.append("\(server) (attempt \(attempt + 1)): \(failure.reason)")
                }
            }
        }
        let error: MacTCPError = answered ? .dnrErr : .noAnsErr
        return .failure(error.with(operation: operation, detail: "\(name): asked " + tried.joined(separator: "; ")))
    }

    /// Why one server did not settle the question, and whether it answered at all (a
    /// server that answers with an error makes the final failure `dnrErr`, not `noAnsErr`).
    private struct ServerFailure: Error {
        let reason: String
        let answered: Bool
    }

    /// One server asked: an answer that settles the question (NOERROR or NXDOMAIN), or why
    /// not. A FORMERR to a query with EDNS0 is asked once more without it (RFC 6891 §7).
    private func exchange(_ name: DNSName, type: DNSRecordType, server: Endpoint) -> Result<DNSMessage, ServerFailure> {
        var edns = configuration.edns
        while true {
            let asked = configuration.randomizeCase ? name.withRandomCase() : name
            let query = DNSMessage.query(id: 0, name: asked, type: type, udpSize: edns ? 1232 : nil)
            let result = DNSExchange.ask(
                query, server: server, deadline: Deadline(timeout: configuration.timeout), tcpOnly: configuration.useTCP,
                exactCase: configuration.randomizeCase)
            switch result {
            case .failure(.malformed(let why)):
                return .failure(ServerFailure(reason: "a malformed answer (\(why))", answered: true))
            case .failure(let failure):
                return .failure(ServerFailure(reason: failure.description, answered: false))
            case .success(let message):
                switch message.extendedResponseCode {
                case Int(DNSResponseCode.noError.rawValue), Int(DNSResponseCode.nameError.rawValue):
                    return .success(message)
                case Int(DNSResponseCode.formatError.rawValue) where edns:
                    edns = false
                default:
                    // SERVFAIL, REFUSED, NOTIMP, FORMERR: the next server is asked.
                    let code = message.extendedResponseCode
                    let known = DNSResponseCode(rawValue: UInt8(truncatingIfNeeded: code)).map { " (\($0))" } ?? ""
                    return .failure(ServerFailure(reason: "response code \(code)\(known)", answered: true))
                }
            }
        }
    }

    /// An answer that settles the question: records, or a negative answer (cached as RFC
    /// 2308 says).
    private func conclude(_ message: DNSMessage, name: DNSName, type: DNSRecordType, key: DNRCache.Key, operation: String)
        -> Result<Outcome, MacTCPError>
    {
        let answer: DNSAnswer
        do {
            answer = try DNSAnswer(message, question: name, type: type)
        } catch {
            return .failure(MacTCPError.dnrErr.with(operation: operation, detail: "\(name): \(error)"))
        }
        let now = Deadline.monotonicNow()
        if message.responseCode == DNSResponseCode.nameError.rawValue || answer.found.isEmpty {
            cache.entries.withLock { $0.store(message, records: [], for: key, now: now) }
            let why = message.responseCode == DNSResponseCode.nameError.rawValue ? "the name does not exist" : "no \(type) record"
            return .failure(MacTCPError.authNameErr.with(operation: operation, detail: "\(name): \(why)"))
        }
        cache.entries.withLock { $0.store(message, records: answer.records, for: key, now: now) }
        return .success(Outcome(canonicalName: answer.canonicalName.description, records: answer.records, withoutPacket: false))
    }
}
