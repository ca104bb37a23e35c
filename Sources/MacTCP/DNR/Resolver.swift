// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Synchronization

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
    /// `/etc/hosts` (or MacTCP's Hosts file): names (lowercased) and their addresses.
    private let hosts: [String: [String]]
    private let cache = Mutex(DNRCache())
    private let nextServer = Atomic<Int>(0)

    init(configuration: DNRConfiguration, hosts: [String: [String]] = [:]) {
        self.configuration = configuration
        self.hosts = hosts
    }

    /// The servers to ask, as endpoints (IPv4 only for now; others are skipped).
    private var servers: [Endpoint] {
        let endpoints = configuration.nameServers.compactMap(Self.endpoint(_:))
        guard configuration.rotate, endpoints.count > 1 else { return endpoints }
        let first = nextServer.add(1, ordering: .relaxed).oldValue % endpoints.count
        return Array(endpoints[first...] + endpoints[..<first])
    }

    /// `addr` or `addr:port` (IPv4); `[v6]:port` and bare IPv6 addresses are not reachable yet.
    static func endpoint(_ text: String) -> Endpoint? {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count <= 2, let host = DNRNames.dottedQuad(String(parts[0])) else { return nil }
        guard parts.count == 2 else { return Endpoint(host: host, port: 53) }
        guard let port = UInt16(parts[1]), port != 0 else { return nil }
        return Endpoint(host: host, port: port)
    }

    /// Answers `text`'s `type` records: throws `nameSyntaxErr` for a malformed name; every
    /// other failure is the returned MacTCP error.
    func resolve(_ text: String, type: DNSRecordType, operation: String) throws(MacTCPError) -> Result<Outcome, MacTCPError> {
        let (name, absolute) = try DNRNames.validated(text, operation: operation)
        switch DNRNames.special(name) {
        case .loopback?:
            let records: [DNSRecord] =
                type == .a
                ? [DNSRecord(name: name, type: .a, dnsClass: 1, ttl: 0, data: .a(IPv4.loopback))]
                : type == .aaaa
                    ? [DNSRecord(name: name, type: .aaaa, dnsClass: 1, ttl: 0, data: .aaaa([UInt8](repeating: 0, count: 15) + [1]))] : []
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
            switch answer(candidate, type: type, operation: operation) {
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

    private static func noSuchName(_ text: String, _ operation: String, why: String) -> MacTCPError {
        MacTCPError.authNameErr.with(operation: operation, detail: "\(text): \(why)")
    }

    /// One candidate name: the hosts table, the cache, then the servers in turn.
    private func answer(_ name: DNSName, type: DNSRecordType, operation: String) -> Result<Outcome, MacTCPError> {
        if type == .a, let addresses = hosts[name.description.lowercased()] {
            let records = addresses.compactMap(DNRNames.dottedQuad).map {
                DNSRecord(name: name, type: .a, dnsClass: 1, ttl: 0, data: .a($0))
            }
            if !records.isEmpty { return .success(Outcome(canonicalName: name.description, records: records, withoutPacket: true)) }
        }
        let key = DNRCache.Key(name, type)
        let now = Deadline.monotonicNow()
        if let cached = cache.withLock({ $0.lookup(key, now: now) }) {
            switch cached.answer {
            case .records(let records):
                let canonical = records.last?.name.description ?? name.description
                return .success(Outcome(canonicalName: canonical, records: records, withoutPacket: true))
            case .negative(let code):
                return .failure(MacTCPError(code: code).with(operation: operation, detail: "\(name): no such record (cached)"))
            }
        }
        let servers = self.servers
        guard !servers.isEmpty else {
            return .failure(MacTCPError.noNameServer.with(operation: operation, detail: "no name server is configured"))
        }
        var tried: [String] = []
        var answered = false
        for attempt in 0..<configuration.attempts {
            for server in servers {
                let query = DNSMessage.query(id: 0, name: name, type: type, udpSize: configuration.edns ? 1232 : nil)
                let deadline = Deadline(timeout: configuration.timeout)
                let place = "\(IPv4.string(server.host)):\(server.port)"
                switch DNSExchange.ask(query, server: server, deadline: deadline, tcpOnly: configuration.useTCP) {
                case .failure(let failure):
                    tried.append("\(place) (attempt \(attempt + 1)): \(failure)")
                case .success(let message):
                    answered = true
                    switch message.extendedResponseCode {
                    case Int(DNSResponseCode.noError.rawValue), Int(DNSResponseCode.nameError.rawValue):
                        return conclude(message, name: name, type: type, key: key, operation: operation)
                    default:
                        // SERVFAIL, REFUSED, NOTIMP, FORMERR: the next server is asked.
                        tried.append("\(place): response code \(message.extendedResponseCode)")
                    }
                }
            }
        }
        let error: MacTCPError = answered ? .dnrErr : .noAnsErr
        return .failure(error.with(operation: operation, detail: "\(name): " + tried.joined(separator: "; ")))
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
            cache.withLock { $0.store(message, records: [], for: key, now: now) }
            let why = message.responseCode == DNSResponseCode.nameError.rawValue ? "the name does not exist" : "no \(type) record"
            return .failure(MacTCPError.authNameErr.with(operation: operation, detail: "\(name): \(why)"))
        }
        cache.withLock { $0.store(message, records: answer.records, for: key, now: now) }
        return .success(Outcome(canonicalName: answer.canonicalName.description, records: answer.records, withoutPacket: false))
    }
}
