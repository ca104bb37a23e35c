// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Synchronization

/// The cache a resolver answers from, kept across reloads of the configuration.
final class DNRCacheStore: Sendable {
    let entries = Mutex(DNRCache())
}

/// The resolver's engine: one question (a name and a type) answered from the special names,
/// the hosts table, the cache and the servers, by the rules of SPEC §6. What needs no packet
/// is answered at once; the servers' answers come through the reactor, so that a question in
/// flight holds no thread.
final class Resolver: Sendable {
    /// A question's outcome: the answer's records and canonical name, or a MacTCP code.
    struct Outcome: Equatable {
        let canonicalName: String
        let records: [DNSRecord]
        /// Whether it came from the cache, the hosts table or a special name (no packet).
        let withoutPacket: Bool
    }

    let configuration: DNRConfiguration
    /// `/etc/hosts`: the addresses of each name, keyed by the name's canonical wire form.
    private let hosts: [DNSName: [String]]
    /// Where the hosts table and DNS are consulted, in order (`/etc/nsswitch.conf`).
    private let order: [SystemHosts.Source]
    /// MacTCP's Hosts file, when the resolver was opened with one: its servers for domains.
    private let hostsFile: MacTCPHostsFile?
    let cache: DNRCacheStore
    /// The configuration's name servers as endpoints (port 53 unless given).
    private let nameServers: [Endpoint]
    private let nextServer = Atomic<Int>(0)

    init(
        configuration: DNRConfiguration, hosts: [String: [String]] = [:], order: [SystemHosts.Source] = [.files, .dns],
        hostsFile: MacTCPHostsFile? = nil, cache: DNRCacheStore = DNRCacheStore()
    ) {
        self.configuration = configuration
        nameServers = configuration.nameServers.compactMap { Endpoint(parsing: $0, defaultPort: 53) }
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
        let servers = nameServers
        guard configuration.rotate, servers.count > 1 else { return servers }
        let first = nextServer.add(1, ordering: .relaxed).oldValue % servers.count
        return Array(servers[first...] + servers[..<first])
    }

    /// Whether a query may need a server: some server is configured or delegated.
    private var hasServers: Bool {
        !configuration.nameServers.isEmpty || !(hostsFile?.servers.isEmpty ?? true)
    }

    /// Answers `text`'s `type` records and blocks until it is done (the blocking form of
    /// ``resolve(_:type:operation:done:)``): throws `nameSyntaxErr` for a malformed name;
    /// every other failure is the returned MacTCP error.
    func resolve(_ text: String, type: DNSRecordType, operation: String) throws(MacTCPError) -> Result<Outcome, MacTCPError> {
        let outcome = OneShot<Result<Outcome, MacTCPError>>()
        try resolve(text, type: type, operation: operation) { outcome.give($0) }
        return outcome.wait()
    }

    /// How far a question got without a packet: settled (a special name, the hosts tables,
    /// the cache), or pending at the first question for a server (MacTCP's `cacheFault`: the
    /// answer comes later, through ``finish(_:done:)``).
    enum Progress {
        case settled(Result<Outcome, MacTCPError>)
        case pending(Pending)
    }

    /// A question stopped where a server must answer.
    struct Pending: Sendable {
        fileprivate let walk: Walk
        fileprivate let name: DNSName
        fileprivate let key: DNRCache.Key
        /// The question as identical questions share it: the name (without regard to case),
        /// whether it was absolute, and the type.
        var question: Question { Question(name: walk.name.canonical, absolute: walk.absolute, type: walk.type.rawValue) }
    }

    struct Question: Hashable, Sendable {
        let name: DNSName
        let absolute: Bool
        let type: UInt16
    }

    /// Takes the question as far as it goes without a packet. Throws only `nameSyntaxErr`.
    func start(_ text: String, type: DNSRecordType, operation: String) throws(MacTCPError) -> Progress {
        switch try begin(text, type: type, operation: operation) {
        case .settled(let outcome):
            return .settled(outcome)
        case .walk(var walk):
            switch advance(&walk) {
            case .done(let outcome): return .settled(outcome)
            case .ask(let name, let key): return .pending(Pending(walk: walk, name: name, key: key))
            }
        }
    }

    /// Asks the servers what `pending` stopped at, walks on, and calls `done` once with the
    /// outcome: on the thread that brings the last answer (the reactor's, for UDP), or before
    /// returning when nothing can be sent.
    func finish(_ pending: Pending, done: @escaping @Sendable (Result<Outcome, MacTCPError>) -> Void) {
        ask(pending.walk, pending.name, pending.key, done: done)
    }

    /// Answers `text`'s `type` records and calls `done` once with the outcome (before
    /// returning when no packet is needed). Throws only `nameSyntaxErr`.
    func resolve(
        _ text: String, type: DNSRecordType, operation: String, done: @escaping @Sendable (Result<Outcome, MacTCPError>) -> Void
    ) throws(MacTCPError) {
        switch try start(text, type: type, operation: operation) {
        case .settled(let outcome): done(outcome)
        case .pending(let pending): finish(pending, done: done)
        }
    }

    /// One question's way through its candidates (the search list) and, for each, the
    /// sources in `order`. Everything but a server's answer is decided here; where one is
    /// needed the walk stops (``Next/ask(_:_:)``) and goes on from there with the answer.
    fileprivate struct Walk: Sendable {
        enum Next {
            case done(Result<Outcome, MacTCPError>)
            case ask(DNSName, DNRCache.Key)
        }

        let name: DNSName
        let absolute: Bool
        let type: DNSRecordType
        let operation: String
        let candidates: [DNSName]
        var candidate = 0
        var source = 0
        /// The last failure of the current candidate's sources.
        var candidateFailure: MacTCPError?
        /// Each failed candidate and why, for the final message.
        var failures: [String] = []
        /// The failure reported at the end: the one for the name as typed (SPEC §6).
        var firstFailure: MacTCPError?
    }

    private enum Start {
        case settled(Result<Outcome, MacTCPError>)
        case walk(Walk)
    }

    /// The name's checks and the special names, answered without a walk.
    private func begin(_ text: String, type: DNSRecordType, operation: String) throws(MacTCPError) -> Start {
        let (name, absolute) = try DNRNames.validated(text, operation: operation)
        switch DNRNames.special(name) {
        case .loopback?:
            let records: [DNSRecord] =
                type == .a
                ? [DNSRecord(name: name, type: .a, dnsClass: 1, ttl: 0, data: .a(IPv4.loopback))]
                : type == .aaaa ? [DNSRecord(name: name, type: .aaaa, dnsClass: 1, ttl: 0, data: .aaaa(Self.ipv6Loopback))] : []
            return .settled(
                records.isEmpty
                    ? .failure(Self.noSuchName(text, operation, why: "localhost has only A and AAAA records"))
                    : .success(Outcome(canonicalName: name.description, records: records, withoutPacket: true)))
        case .invalid?:
            return .settled(.failure(Self.noSuchName(text, operation, why: "names under .invalid never exist (RFC 6761)")))
        case .onion?:
            return .settled(.failure(Self.noSuchName(text, operation, why: "names under .onion are not resolved by DNS (RFC 7686)")))
        case nil:
            let candidates = DNRNames.candidates(name, absolute: absolute, configuration: configuration)
            return .walk(Walk(name: name, absolute: absolute, type: type, operation: operation, candidates: candidates))
        }
    }

    /// Walks on to the outcome, or to the next question for a server. With `answered`, the
    /// walk resumes with the servers' outcome for the candidate it stopped at.
    private func advance(_ walk: inout Walk, answered: Result<Outcome, MacTCPError>? = nil) -> Walk.Next {
        switch answered {
        case .success(let outcome)?: return .done(.success(outcome))
        case .failure(let error)?: walk.candidateFailure = error
        case nil: break
        }
        while walk.candidate < walk.candidates.count {
            let candidate = walk.candidates[walk.candidate]
            let canonical = candidate.canonical
            // A source that fails hands the name to the next one; the last failure counts.
            while walk.source < order.count {
                let source = order[walk.source]
                walk.source += 1
                switch source {
                case .files:
                    if let outcome = fromHosts(candidate, canonical, type: walk.type) { return .done(.success(outcome)) }
                case .dns:
                    let key = DNRCache.Key(canonical: canonical, walk.type)
                    switch fromCache(candidate, key: key, operation: walk.operation) {
                    case .success(let outcome)?:
                        return .done(.success(outcome))
                    case .failure(let error)?:
                        walk.candidateFailure = error
                    case nil:
                        guard hasServers else {
                            walk.candidateFailure = MacTCPError.noNameServer.with(
                                operation: walk.operation, detail: "no name server is configured")
                            continue
                        }
                        return .ask(candidate, key)
                    }
                }
            }
            let error =
                walk.candidateFailure
                ?? MacTCPError.authNameErr.with(operation: walk.operation, detail: "\(candidate): not in /etc/hosts")
            walk.failures.append("\(candidate): \(error.detail ?? error.name)")
            if candidate.sameName(as: walk.name) || walk.firstFailure == nil { walk.firstFailure = error }
            // Only "no such name" moves on to the next candidate.
            if error != .authNameErr { return .done(.failure(error)) }
            walk.candidate += 1
            walk.source = 0
            walk.candidateFailure = nil
        }
        let error = walk.firstFailure ?? MacTCPError.authNameErr
        return .done(.failure(error.with(operation: walk.operation, detail: walk.failures.joined(separator: "; "))))
    }

    /// Asks the servers for `name` (the walk's current candidate), then walks on to the
    /// outcome, asking again wherever the walk needs them.
    private func ask(
        _ walk: Walk, _ name: DNSName, _ key: DNRCache.Key, done: @escaping @Sendable (Result<Outcome, MacTCPError>) -> Void
    ) {
        let round = Round(
            name: name, type: walk.type, key: key, operation: walk.operation, servers: servers(for: name), edns: configuration.edns)
        ask(round) { [self] answered in
            var walk = walk
            switch advance(&walk, answered: answered) {
            case .done(let outcome): done(outcome)
            case .ask(let name, let key): ask(walk, name, key, done: done)
            }
        }
    }

    static let ipv6Loopback = [UInt8](repeating: 0, count: 15) + [1]

    private static func noSuchName(_ text: String, _ operation: String, why: String) -> MacTCPError {
        MacTCPError.authNameErr.with(operation: operation, detail: "\(text): \(why)")
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

    /// The cache's answer for `key`, or nil when it has none.
    private func fromCache(_ name: DNSName, key: DNRCache.Key, operation: String) -> Result<Outcome, MacTCPError>? {
        let now = Deadline.monotonicNow()
        guard let cached = cache.entries.withLock({ $0.lookup(key, now: now) }) else { return nil }
        switch cached.answer {
        case .records(let records):
            let canonical = records.last?.name.description ?? name.description
            return .success(Outcome(canonicalName: canonical, records: records, withoutPacket: true))
        case .negative(let code):
            return .failure(MacTCPError(code: code).with(operation: operation, detail: "\(name): no such record (cached)"))
        }
    }

    /// Asking the servers for one candidate: `attempts` rounds of each in turn, until one
    /// settles the question. A FORMERR to a query with EDNS0 is asked once more without it
    /// (RFC 6891 §7).
    private struct Round: Sendable {
        let name: DNSName
        let type: DNSRecordType
        let key: DNRCache.Key
        let operation: String
        let servers: [Endpoint]
        var edns: Bool
        var attempt = 0
        var server = 0
        /// Each server asked and what it did, for the failure's message.
        var tried: [String] = []
        /// Whether some server answered at all (then the failure is `dnrErr`, not `noAnsErr`).
        var answered = false
    }

    /// Asks the round's next server, and the next, until one settles the question or every
    /// attempt is spent; calls `done` once.
    private func ask(_ round: Round, done: @escaping @Sendable (Result<Outcome, MacTCPError>) -> Void) {
        guard !round.servers.isEmpty else {
            return done(
                .failure(
                    MacTCPError.noNameServer.with(
                        operation: round.operation,
                        detail: "no name server can be reached: \(configuration.nameServers.joined(separator: ", "))")))
        }
        guard round.attempt < configuration.attempts else {
            let error: MacTCPError = round.answered ? .dnrErr : .noAnsErr
            return done(
                .failure(error.with(operation: round.operation, detail: "\(round.name): asked " + round.tried.joined(separator: "; "))))
        }
        let server = round.servers[round.server]
        let asked = configuration.randomizeCase ? round.name.withRandomCase() : round.name
        let query = DNSMessage.query(id: 0, name: asked, type: round.type, udpSize: round.edns ? 1232 : nil)
        DNSExchange.ask(
            query, server: server, timeout: configuration.timeout, tcpOnly: configuration.useTCP, exactCase: configuration.randomizeCase
        ) { [self] answer in
            var next = round
            let reason: String
            switch answer {
            case .success(let message):
                switch message.extendedResponseCode {
                case Int(DNSResponseCode.noError.rawValue), Int(DNSResponseCode.nameError.rawValue):
                    return done(conclude(message, name: round.name, type: round.type, key: round.key, operation: round.operation))
                case Int(DNSResponseCode.formatError.rawValue) where round.edns:
                    next.edns = false
                    return ask(next, done: done)
                default:
                    // SERVFAIL, REFUSED, NOTIMP, FORMERR: the next server is asked.
                    let code = message.extendedResponseCode
                    let known = DNSResponseCode(rawValue: UInt8(truncatingIfNeeded: code)).map { " (\($0))" } ?? ""
                    reason = "response code \(code)\(known)"
                    next.answered = true
                }
            case .failure(.malformed(let why)):
                reason = "a malformed answer (\(why))"
                next.answered = true
            case .failure(let failure):
                reason = failure.description
            }
            next.tried.append("\(server) (attempt \(round.attempt + 1)): \(reason)")
            next.edns = configuration.edns
            next.server += 1
            if next.server == round.servers.count {
                next.server = 0
                next.attempt += 1
            }
            ask(next, done: done)
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
