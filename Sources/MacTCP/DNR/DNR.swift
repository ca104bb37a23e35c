// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// DNR: MacTCP's name resolver (`AddressXlation`) as a DNS stub resolver of its own, not a
// wrapper of `getaddrinfo`. The public calls (this file, `DNRResult`, `DNRQuery`,
// `DNRCacheEntry`, `DNRRecord`) stand on the engine (`Resolver`: special names, hosts tables,
// the cache, the servers), which stands on the wire (`DNSExchange`, `DNSUDPExchange`,
// `DNSMessage`). It calls the kernel only through `System/`, waits for answers on the reactor
// (`Reactor/`) and runs what may block (completions, questions over TCP) on the delivery
// threads of `Events/`.

import Synchronization

/// MacTCP's name resolver: names to addresses and back, host information and mail
/// exchanges, from the hosts tables, a cache and the domain name servers.
///
/// The calls are MacTCP's: ``strToAddr(_:)``, ``addrToName(_:)``, ``hInfo(_:)``,
/// ``mxInfo(_:)``, ``enumCache()``, ``addrToStr(_:)``; each returns a ``DNRResult`` that is
/// done at once when no packet is needed (a dotted quad, a cached name: MacTCP's `noErr`) or
/// later (MacTCP's `cacheFault`). Beyond MacTCP, ``query(_:type:)`` asks for any record type.
/// Concurrent identical queries share one packet.
///
/// ```swift
/// let result = try DNR.shared.strToAddr("localhost")
/// print(result.isDone)  // → true
/// print(IPv4.string(result.addresses[0]))  // → 127.0.0.1
/// ```
///
/// The corresponding MacTCP calls are `OpenResolver` (``init(hostsFile:configuration:)``) and
/// `CloseResolver` (``close()``); Python's `macdnr.Open` and `macdnr.Close`.
public final class DNR: Sendable {
    /// The most addresses a result holds, MacTCP's `NUM_ALT_ADDRS`.
    public static let maxAddresses = 4

    /// The resolver of the process, opened on first use with the system configuration
    /// (`/etc/resolv.conf`, `/etc/hosts`, `/etc/nsswitch.conf`, read again when they change).
    /// Closing it is for good: later calls throw `notOpenErr`.
    public static let shared = DNR(files: .standard, environment: DNRSystemFiles.environment, configuration: nil)

    /// How often the system's files are looked at for changes.
    static let reloadInterval: UInt64 = 5_000_000_000

    private struct State {
        var isOpen = true
        var resolver: Resolver
        var flights: [Resolver.Question: DNRFlight] = [:]
        /// The system files read again when they change (nil with a Hosts file).
        var files: DNRSystemFiles?
        var versions: [[Int64]?] = []
        var lastCheck: UInt64 = 0
        /// The configuration given explicitly (nil: the system's, from the files).
        var explicit: DNRConfiguration?
        var environment: [String: String] = [:]
    }

    private let state: Lock<State>
    /// The lines of the Hosts file that could not be read, with their numbers (empty without one).
    public let hostsFileProblems: [String]

    /// Opens a resolver: MacTCP's `OpenResolver`.
    ///
    /// - Parameters:
    ///   - hostsFile: The path of MacTCP's Hosts file (RFC 1035 master-file lines: `A`,
    ///     `CNAME` and `NS` records, `$ORIGIN`, `$TTL`), which preloads the cache (entries
    ///     that never expire) and names the servers for its domains; `/etc/hosts` is then
    ///     not read. With nil, `/etc/hosts` answers in the order of `/etc/nsswitch.conf`.
    ///   - configuration: Where and how to ask; ``DNRConfiguration/system`` by default (then,
    ///     and only when it is left as it was read, the files are read again when they change).
    /// - Throws: `MacTCPError.ipNoCnfgErr` when the Hosts file cannot be read (missing,
    ///   unreadable, larger than 4 MiB). Lines of it that cannot be read do not throw: they
    ///   are in ``hostsFileProblems``.
    ///
    /// The corresponding MacTCP call is `OpenResolver`.
    public convenience init(hostsFile: String? = nil, configuration: DNRConfiguration = .system) throws {
        guard let hostsFile else {
            // The system's configuration as it is now: read again from the files when they change.
            let isSystem = configuration.isSystem && configuration == DNRConfiguration.system
            self.init(files: .standard, environment: DNRSystemFiles.environment, configuration: isSystem ? nil : configuration)
            return
        }
        let bytes: [UInt8]
        switch Sys.readFile(hostsFile, limit: DNRSystemFiles.largestFile) {
        case .success(let read):
            bytes = read
        case .failure(let failure):
            throw MacTCPError.ipNoCnfgErr.with(
                operation: "openResolver", errno: failure.errno, detail: "the Hosts file \(hostsFile) cannot be read")
        }
        let file = MacTCPHostsFile(parsing: String(decoding: bytes, as: UTF8.self))
        self.init(hostsFile: file, configuration: configuration)
    }

    /// A resolver with MacTCP's Hosts file already read.
    init(hostsFile: MacTCPHostsFile, configuration: DNRConfiguration) {
        state = Lock(State(resolver: Resolver(configuration: configuration, order: [.dns], hostsFile: hostsFile)))
        hostsFileProblems = hostsFile.problems.map { "line \($0.line): \($0.reason)" }
    }

    /// A resolver over the system's files at `files` (read again when they change), with
    /// `configuration` instead of the `resolv.conf` one when given.
    init(files: DNRSystemFiles, environment: [String: String], configuration: DNRConfiguration?) {
        let contents = files.read(environment: environment)
        var initial = State(resolver: Self.resolver(contents, explicit: configuration, cache: DNRCacheStore()))
        initial.files = files
        initial.versions = contents.versions
        initial.lastCheck = Deadline.monotonicNow()
        initial.explicit = configuration
        initial.environment = environment
        state = Lock(initial)
        hostsFileProblems = []
    }

    private static func resolver(_ contents: DNRSystemFiles.Contents, explicit: DNRConfiguration?, cache: DNRCacheStore) -> Resolver {
        Resolver(configuration: explicit ?? contents.configuration, hosts: contents.hosts, order: contents.order, cache: cache)
    }

    /// The configuration in use now.
    public var configuration: DNRConfiguration { state.withLock { $0.resolver.configuration } }

    /// Closes the resolver: MacTCP's `CloseResolver`. Pending queries complete at once with
    /// `notOpenErr`; later calls throw it. Closing twice does nothing more.
    ///
    /// The corresponding MacTCP call is `CloseResolver`.
    public func close() {
        let pending = state.withLock { state -> [DNRFlight] in
            state.isOpen = false
            let flights = Array(state.flights.values)
            state.flights = [:]
            return flights
        }
        let closed = MacTCPError.notOpenErr.with(operation: "closeResolver", detail: "the resolver was closed while the query was pending")
        for flight in pending { flight.complete(.failure(closed)) }
    }

    /// Translates a host name or a dotted quad into addresses: MacTCP's `StrToAddr`.
    ///
    /// - Parameter name: A dotted quad (`"10.0.0.1"`, exactly four decimal parts) or a host
    ///   name (ASCII letters, digits, `-`, `_`; a trailing dot makes it absolute, otherwise the
    ///   search list applies).
    /// - Returns: The result: done at once for a dotted quad, a cached name or a hosts-table
    ///   name; in flight otherwise. Its ``DNRResult/addresses`` are the A records.
    /// - Throws: `MacTCPError.nameSyntaxErr` for a malformed name; `notOpenErr` after
    ///   ``close()``. Every other failure is in the result.
    ///
    /// The corresponding MacTCP call is `StrToAddr`.
    public func strToAddr(_ name: String) throws -> DNRResult {
        let operation = "strToAddr"
        if let address = DNRNames.dottedQuad(name) {
            try checkOpen(operation)
            let record = DNSRecord(name: .root, type: .a, dnsClass: 1, ttl: 0, data: .a(address))
            return DNRResult(
                DNRFlight(.success(Resolver.Outcome(canonicalName: name, records: [record], withoutPacket: true))), kind: .address)
        }
        return DNRResult(try flight(name, type: .a, operation: operation), kind: .address)
    }

    /// Formats an address as dotted-quad text: MacTCP's `AddrToStr`.
    ///
    /// - Parameter address: The address in host byte order.
    /// - Returns: Text such as `"127.0.0.1"`.
    ///
    /// The corresponding MacTCP call is `AddrToStr`.
    public static func addrToStr(_ address: UInt32) -> String {
        IPv4.string(address)
    }

    /// Translates an address into its host name (a PTR query under `in-addr.arpa`):
    /// MacTCP's `AddrToName`.
    ///
    /// - Parameter address: The address in host byte order.
    /// - Returns: The result; its ``DNRResult/cname`` is the name the address points to.
    /// - Throws: `MacTCPError.notOpenErr` after ``close()``.
    ///
    /// The corresponding MacTCP call is `AddrToName`.
    public func addrToName(_ address: UInt32) throws -> DNRResult {
        let reverse = "\(address & 0xFF).\(address >> 8 & 0xFF).\(address >> 16 & 0xFF).\(address >> 24).in-addr.arpa."
        return DNRResult(try flight(reverse, type: .ptr, operation: "addrToName"), kind: .name)
    }

    /// Asks for a host's CPU type and operating system (its HINFO record): MacTCP's `HInfo`.
    ///
    /// - Parameter name: The host name.
    /// - Returns: The result, with ``DNRResult/cpuType`` and ``DNRResult/osType``.
    /// - Throws: `MacTCPError.nameSyntaxErr` for a malformed name; `notOpenErr` after
    ///   ``close()``.
    ///
    /// The corresponding MacTCP call is `HInfo`.
    public func hInfo(_ name: String) throws -> DNRResult {
        DNRResult(try flight(name, type: .hinfo, operation: "hInfo"), kind: .hinfo)
    }

    /// Asks for a domain's mail exchange of lowest preference: MacTCP's `MXInfo`.
    ///
    /// - Parameter name: The domain.
    /// - Returns: The result, with ``DNRResult/preference`` and ``DNRResult/exchange``; a
    ///   null MX (RFC 7505) is `authNameErr`.
    /// - Throws: `MacTCPError.nameSyntaxErr` for a malformed name; `notOpenErr` after
    ///   ``close()``.
    ///
    /// The corresponding MacTCP call is `MXInfo`.
    public func mxInfo(_ name: String) throws -> DNRResult {
        DNRResult(try flight(name, type: .mx, operation: "mxInfo"), kind: .mx)
    }

    /// Asks for `name`'s records of any type, beyond MacTCP's calls (AAAA, TXT, SRV, PTR, …).
    ///
    /// - Parameters:
    ///   - name: The name; the search list applies as for ``strToAddr(_:)``. For PTR, the
    ///     reverse name (`1.0.0.127.in-addr.arpa`, or under `ip6.arpa`).
    ///   - type: The record type.
    /// - Returns: The query, done at once when cached, with typed records and their TTLs.
    /// - Throws: `MacTCPError.nameSyntaxErr` for a malformed name; `notOpenErr` after
    ///   ``close()``.
    ///
    /// There is no corresponding MacTCP call; MacTCP's resolver asked for A, PTR, HINFO and MX.
    public func query(_ name: String, type: DNSRecordType) throws -> DNRQuery {
        DNRQuery(try flight(name, type: type, operation: "query"))
    }

    /// Lists the cache: MacTCP's `EnumCache`, as an array instead of a procedure per entry.
    ///
    /// - Returns: The entries that have not expired, one per record, negative entries
    ///   included, in name order.
    ///
    /// The corresponding MacTCP call is `EnumCache`.
    public func enumCache() -> [DNRCacheEntry] {
        let cache = state.withLock { $0.resolver.cache }
        let now = Deadline.monotonicNow()
        return cache.entries.withLock { $0.listing(now: now) }
    }

    private func checkOpen(_ operation: String) throws(MacTCPError) {
        guard state.withLock({ $0.isOpen }) else { throw Self.notOpen(operation) }
    }

    private static func notOpen(_ operation: String) -> MacTCPError {
        MacTCPError.notOpenErr.with(operation: operation, detail: "the resolver has been closed")
    }

    /// The flight for `name`'s `type` records: settled at once when no packet is needed, the
    /// one in flight for the same question if there is one, or a new one, whose questions to
    /// the servers wait on the reactor. Its completion handlers run on the library's delivery
    /// threads, never on the reactor's.
    private func flight(_ name: String, type: DNSRecordType, operation: String) throws(MacTCPError) -> DNRFlight {
        let resolver = try currentResolver(operation)
        let pending: Resolver.Pending
        switch try resolver.start(name, type: type, operation: operation) {
        case .settled(let outcome): return DNRFlight(outcome)
        case .pending(let question): pending = question
        }
        let key = pending.question
        let (flight, isNew) = try state.withLock { state throws(MacTCPError) -> (DNRFlight, Bool) in
            guard state.isOpen else { throw Self.notOpen(operation) }
            if let flying = state.flights[key] { return (flying, false) }
            let flight = DNRFlight()
            state.flights[key] = flight
            return (flight, true)
        }
        guard isNew else { return flight }
        resolver.finish(pending) { [self] outcome in
            state.withLock { state in
                if state.flights[key] === flight { state.flights[key] = nil }
            }
            flight.complete(outcome) { handlers in DeliveryPool.shared.run(handlers) }
        }
        return flight
    }

    /// The resolver to ask now: after reading the system's files again if they changed
    /// (looked at every 5 s at most, unless `no-reload`). The cache stays unless the
    /// servers changed.
    private func currentResolver(_ operation: String) throws(MacTCPError) -> Resolver {
        try state.withLock { state throws(MacTCPError) -> Resolver in
            guard state.isOpen else { throw Self.notOpen(operation) }
            guard let files = state.files, !state.resolver.configuration.noReload else { return state.resolver }
            let now = Deadline.monotonicNow()
            guard now &- state.lastCheck >= Self.reloadInterval else { return state.resolver }
            state.lastCheck = now
            let versions = files.versions
            guard versions != state.versions else { return state.resolver }
            let contents = files.read(environment: state.environment)
            let old = state.resolver
            let sameServers = (state.explicit ?? contents.configuration).nameServers == old.configuration.nameServers
            state.resolver = Self.resolver(contents, explicit: state.explicit, cache: sameServers ? old.cache : DNRCacheStore())
            state.versions = contents.versions
            return state.resolver
        }
    }
}
