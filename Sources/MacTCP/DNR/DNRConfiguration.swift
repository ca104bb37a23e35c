// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// Where and how the resolver (``DNR``) asks: the name servers, the search list and the options, read
/// from `/etc/resolv.conf` as glibc reads it.
///
/// The rules, glibc's (`resolv.conf(5)`) where it has one:
/// - `nameserver ADDRESS`: the first three count (IPv4 or IPv6, a scope after `%` kept); with
///   none, `127.0.0.1` and `::1`, as glibc and Go do.
/// - `search DOMAIN…` and `domain DOMAIN`: the last such line wins; `search --` (or `.`)
///   means no search list. `LOCALDOMAIN` in the environment replaces it.
/// - `options …`: `ndots:n` (default 1, at most 15), `timeout:n` (seconds, default 5, at most
///   30), `attempts:n` (default 2, at most 5), `rotate`, `use-vc` (TCP only), `edns0`,
///   `single-request`, `single-request-reopen`, `no-aaaa`, `trust-ad`, `no-reload`; an
///   unknown or malformed option is ignored. `RES_OPTIONS` in the environment is read after
///   the file's, so its options win.
/// - `#` and `;` start comments; a line is a keyword and its values separated by blanks.
public struct DNRConfiguration: Sendable, Equatable {
    /// The servers to ask, in order: `"addr"`, `"addr:port"`, an IPv6 address (`"::1"`,
    /// `"fe80::1%eth0"`) or `"[v6addr]:port"`; port 53 when none is given.
    public var nameServers: [String]
    /// The domains a short name is tried in (`search`, `domain`, `LOCALDOMAIN`).
    public var searchDomains: [String]
    /// A name with fewer dots than this is tried with the search domains first (default 1).
    public var ndots: Int
    /// How long one server is waited for, per attempt (default 5 s).
    public var timeout: Duration
    /// How many rounds of the servers are made (default 2).
    public var attempts: Int
    /// Whether each query starts at the next server in turn (`rotate`).
    public var rotate: Bool
    /// Whether queries go over TCP only (`use-vc`).
    public var useTCP: Bool
    /// Whether queries carry EDNS0 with a 1,232-byte UDP size (default true).
    public var edns: Bool
    /// Whether the query name's letters get a random case, which the answer must repeat
    /// exactly (DNS 0x20; off by default: some servers do not repeat it).
    public var randomizeCase: Bool
    /// `single-request`: A and AAAA asked one after the other, not at once.
    var singleRequest = false
    /// `single-request-reopen`: and the second from a new socket.
    var singleRequestReopen = false
    /// `no-aaaa`: AAAA queries are not sent.
    var noAAAA = false
    /// `trust-ad`: the AD bit is set in queries.
    var trustAD = false
    /// `no-reload`: the files are not read again when they change.
    var noReload = false
    /// Read from the system's files (``system``): read again when they change.
    var isSystem = false

    /// The servers glibc and Go ask when `resolv.conf` names none.
    public static let defaultServers = ["127.0.0.1", "::1"]
    static let maximumServers = 3

    /// Creates a configuration; every argument has glibc's default.
    ///
    /// - Parameters:
    ///   - nameServers: The servers, `"addr"` or `"addr:port"`; `[]` means none (then only
    ///     the hosts tables answer, and other names fail with `noNameServer`).
    ///   - searchDomains: The search list.
    ///   - ndots: The dots below which the search list is tried first.
    ///   - timeout: The wait for one server, per attempt.
    ///   - attempts: The rounds of the servers.
    ///   - rotate: Whether queries start at the next server in turn.
    ///   - useTCP: Whether queries go over TCP only.
    ///   - edns: Whether queries carry EDNS0.
    ///   - randomizeCase: Whether the query name's case is randomised (0x20).
    public init(
        nameServers: [String] = DNRConfiguration.defaultServers,
        searchDomains: [String] = [],
        ndots: Int = 1,
        timeout: Duration = .seconds(5),
        attempts: Int = 2,
        rotate: Bool = false,
        useTCP: Bool = false,
        edns: Bool = true,
        randomizeCase: Bool = false
    ) {
        self.nameServers = nameServers
        self.searchDomains = searchDomains
        self.ndots = ndots
        self.timeout = timeout
        self.attempts = attempts
        self.rotate = rotate
        self.useTCP = useTCP
        self.edns = edns
        self.randomizeCase = randomizeCase
    }

    /// The system's configuration: `/etc/resolv.conf`, then `LOCALDOMAIN` and `RES_OPTIONS`
    /// from the environment, as glibc reads them. A resolver opened with it reads the file
    /// again when it changes (unless `options no-reload`).
    public static var system: DNRConfiguration {
        DNRSystemFiles.standard.read(environment: DNRSystemFiles.environment).configuration
    }

    /// The configuration a `resolv.conf` text gives, by glibc's rules (the environment is not
    /// consulted).
    ///
    /// - Parameter text: The text of a `resolv.conf` file.
    /// - Returns: The configuration; unknown lines and malformed options are ignored.
    public static func parse(resolvConf text: String) -> DNRConfiguration {
        parse(resolvConf: text, environment: [:])
    }

    /// The configuration a `resolv.conf` text gives, then `LOCALDOMAIN` and `RES_OPTIONS`
    /// from `environment` (nil or empty: not set).
    static func parse(resolvConf text: String, environment: [String: String]) -> DNRConfiguration {
        var configuration = DNRConfiguration(nameServers: [])
        // glibc leaves EDNS0 off unless asked; the resolver asks by default (RFC 6891's 1,232
        // bytes, as the DNS flag day of 2020 settled), and `edns0` keeps it on.
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.prefix { $0 != "#" && $0 != ";" }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let keyword = words.first else { continue }
            let values = Array(words.dropFirst())
            switch keyword {
            case "nameserver":
                if let server = values.first, configuration.nameServers.count < maximumServers, isAddress(server) {
                    configuration.nameServers.append(server)
                }
            case "search":
                configuration.searchDomains = searchList(values)
            case "domain":
                configuration.searchDomains = searchList(Array(values.prefix(1)))
            case "options":
                configuration.apply(options: values)
            default:
                continue
            }
        }
        if configuration.nameServers.isEmpty { configuration.nameServers = defaultServers }
        if let local = environment["LOCALDOMAIN"], !local.isEmpty {
            configuration.searchDomains = searchList(local.split(separator: " ").map(String.init))
        }
        if let options = environment["RES_OPTIONS"], !options.isEmpty {
            configuration.apply(options: options.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init))
        }
        return configuration
    }

    /// A search list's domains without trailing dots; `--` or `.` alone means none.
    private static func searchList(_ values: [String]) -> [String] {
        if values == ["--"] || values == ["."] { return [] }
        return values.compactMap { value in
            let domain = value.hasSuffix(".") ? String(value.dropLast()) : value
            return domain.isEmpty || DNSName(domain) == nil ? nil : domain
        }
    }

    private mutating func apply(options: [String]) {
        for option in options {
            let (name, value) = Self.split(option)
            switch (name, value) {
            case ("ndots", let value?): ndots = min(value, 15)
            case ("timeout", let value?): timeout = .seconds(min(max(value, 1), 30))
            case ("attempts", let value?): attempts = min(max(value, 1), 5)
            case ("rotate", nil): rotate = true
            case ("use-vc", nil): useTCP = true
            case ("edns0", nil): edns = true
            case ("single-request", nil): singleRequest = true
            case ("single-request-reopen", nil): singleRequestReopen = true
            case ("no-aaaa", nil): noAAAA = true
            case ("trust-ad", nil): trustAD = true
            case ("no-reload", nil): noReload = true
            default: continue
            }
        }
    }

    /// `name:value` with a non-negative decimal value, or a bare name (value nil). A
    /// malformed value makes the option unknown.
    private static func split(_ option: String) -> (String, Int?) {
        guard let colon = option.firstIndex(of: ":") else { return (option, nil) }
        let name = String(option[..<colon])
        guard let value = Int(option[option.index(after: colon)...]), value >= 0 else { return ("", nil) }
        return (name, value)
    }

    /// Whether `text` is an IPv4 dotted quad or an IPv6 address (with an optional `%scope`),
    /// as `nameserver` lines give them.
    static func isAddress(_ text: String) -> Bool {
        if IPv4.address(text) != nil { return true }
        let address = text.split(separator: "%", maxSplits: 1).first.map(String.init) ?? text
        return isIPv6(address)
    }

    /// RFC 4291 text (``IPv6Text``).
    private static func isIPv6(_ text: String) -> Bool {
        IPv6Text.bytes(text) != nil
    }
}
