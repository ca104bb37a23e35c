// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// `/etc/hosts` and the `hosts:` line of `/etc/nsswitch.conf`, read as glibc reads them.
enum SystemHosts {
    /// The addresses `/etc/hosts` gives each name (lowercased), in file order: each line is an
    /// address (IPv4 or IPv6) and its names; `#` starts a comment; a line whose address is
    /// not one is skipped.
    static func parse(hosts text: String) -> [String: [String]] {
        var table: [String: [String]] = [:]
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let words = rawLine.prefix { $0 != "#" }.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard words.count >= 2, DNRConfiguration.isAddress(words[0]) else { continue }
            for name in words.dropFirst() {
                let key = (name.hasSuffix(".") ? String(name.dropLast()) : name).lowercased()
                guard DNSName(key) != nil else { continue }
                if table[key]?.contains(words[0]) != true { table[key, default: []].append(words[0]) }
            }
        }
        return table
    }

    /// The sources `hosts:` names in order, of the two the resolver knows (`files`, `dns`);
    /// other modules (`mdns4_minimal`, `myhostname`, …) and `[…]` actions are skipped. No
    /// file or no `hosts:` line: `files dns`, glibc's default.
    enum Source: Equatable { case files, dns }

    static func parse(nsswitch text: String) -> [Source] {
        for rawLine in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let line = rawLine.prefix { $0 != "#" }
            guard let colon = line.firstIndex(of: ":"), line[..<colon].split(whereSeparator: { $0 == " " || $0 == "\t" }) == ["hosts"]
            else { continue }
            var sources: [Source] = []
            for word in line[line.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" }) {
                let source: Source? = word == "files" ? .files : word == "dns" ? .dns : nil
                if let source, !sources.contains(source) { sources.append(source) }
            }
            return sources
        }
        return [.files, .dns]
    }
}
