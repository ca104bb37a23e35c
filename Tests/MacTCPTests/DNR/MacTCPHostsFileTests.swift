// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Testing

@testable import MacTCP

/// MacTCP's Hosts file read as RFC 1035 master-file lines.
@Suite("units: MacTCP's Hosts file")
struct MacTCPHostsFileTests {
    static let text = """
        ; MacTCP Hosts file
        $TTL 3600
        $ORIGIN example.org.
        www           A      10.0.0.1
                      A      10.0.0.2      ; a second address for www
        mail  600 IN  A      10.0.0.3
        ftp   IN 300  CNAME  www
        alias         CNAME  other.example.net.
        @             A      10.0.0.9
        corp          NS     ns1.corp
        ns1.corp      A      10.0.1.53
        lab.example.net.  NS  ns.lab.example.net.
        bad           A      300.1.1.1
        broken        MX     10 mail
        """

    @Test("relative names, $ORIGIN and @, $TTL and per-line TTLs, classes, continuation lines")
    func records() {
        let file = MacTCPHostsFile(parsing: Self.text)
        let shown = file.records.map { "\($0.name) \($0.ttl) \($0.type) \($0.data)" }
        #expect(
            shown == [
                "www.example.org 3600 A a(167772161)", "www.example.org 3600 A a(167772162)",
                "mail.example.org 600 A a(167772163)",
                "ftp.example.org 300 CNAME name(www.example.org)", "alias.example.org 3600 CNAME name(other.example.net)",
                "example.org 3600 A a(167772169)", "corp.example.org 3600 NS name(ns1.corp.example.org)",
                "ns1.corp.example.org 3600 A a(167772469)", "lab.example.net 3600 NS name(ns.lab.example.net)",
            ], "\(shown)")
    }

    @Test("NS lines name the servers of their domain with their glue; the longest domain wins; no glue is a problem")
    func servers() {
        let file = MacTCPHostsFile(parsing: Self.text)
        #expect(file.servers == ["corp.example.org": [0x0A00_0135]])
        #expect(file.servers(for: DNSName("db.Corp.example.org")!) == [0x0A00_0135])
        #expect(file.servers(for: DNSName("www.example.org")!) == nil)
        #expect(file.problems.map(\.line) == [12, 13, 14])
        #expect(file.problems.first?.reason.contains("glue") == true)
    }

    @Test("no origin: names are absolute; a continuation with nothing before it is a problem")
    func noOrigin() {
        let file = MacTCPHostsFile(parsing: "  A 10.0.0.1\nhost A 10.0.0.7\n$TTL x\n")
        #expect(file.records.map(\.name.description) == ["host"])
        #expect(file.records.first?.ttl == MacTCPHostsFile.defaultTTL)
        #expect(file.problems.map(\.line) == [1, 3])
    }
}
