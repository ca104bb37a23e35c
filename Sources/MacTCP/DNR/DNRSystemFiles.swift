// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The system's resolver files, `/etc/resolv.conf`, `/etc/hosts` and `/etc/nsswitch.conf`,
/// read as glibc reads them, and read again when they change.
struct DNRSystemFiles: Sendable, Equatable {
    var resolvConf = "/etc/resolv.conf"
    var hosts = "/etc/hosts"
    var nsswitch = "/etc/nsswitch.conf"

    static let standard = DNRSystemFiles()
    /// A file larger than this is not read (a resolver file is a few kilobytes; the bound
    /// keeps a hostile or broken one from taking the memory).
    static let largestFile = 4 << 20

    /// What the files say, and the versions they were read at.
    struct Contents: Sendable {
        var configuration: DNRConfiguration
        var hosts: [String: [String]]
        var order: [SystemHosts.Source]
        var versions: [[Int64]?]
    }

    /// The versions (modification time, inode, size) of the three files now.
    var versions: [[Int64]?] { [resolvConf, hosts, nsswitch].map(Sys.fileVersion) }

    /// Reads the three files; a file that is missing or cannot be read counts as empty
    /// (glibc's defaults), and `environment` gives `LOCALDOMAIN` and `RES_OPTIONS`.
    func read(environment: [String: String]) -> Contents {
        let versions = self.versions
        var configuration = DNRConfiguration.parse(resolvConf: Self.text(resolvConf), environment: environment)
        configuration.isSystem = true
        let hostsText = Self.text(hosts)
        let nsswitchText = Self.text(nsswitch)
        return Contents(
            configuration: configuration, hosts: SystemHosts.parse(hosts: hostsText),
            order: SystemHosts.parse(nsswitch: nsswitchText), versions: versions)
    }

    private static func text(_ path: String) -> String {
        guard case .success(let bytes) = Sys.readFile(path, limit: largestFile) else { return "" }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The process's `LOCALDOMAIN` and `RES_OPTIONS`.
    static var environment: [String: String] {
        var found: [String: String] = [:]
        for name in ["LOCALDOMAIN", "RES_OPTIONS"] {
            if let value = Sys.environment(name) { found[name] = value }
        }
        return found
    }
}
