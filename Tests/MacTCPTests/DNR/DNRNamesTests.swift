// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Testing

@testable import MacTCP

/// The name rules of SPEC §6 and the system's host files, as units.
@Suite("units: names, /etc/hosts and nsswitch.conf")
struct DNRNamesTests {
    @Test("a dotted quad is four decimal parts 0…255 without leading zeros; anything else is a name")
    func dottedQuads() {
        #expect(DNRNames.dottedQuad("127.0.0.1") == 0x7F00_0001)
        #expect(DNRNames.dottedQuad("0.0.0.0") == 0 && DNRNames.dottedQuad("255.255.255.255") == .max)
        for name in ["127.1", "0x7f.0.0.1", "010.0.0.1", "256.0.0.1", "1.2.3.4.", "1.2.3.", " 1.2.3.4", "1.2.3.+4"] {
            #expect(DNRNames.dottedQuad(name) == nil, "\(name)")
        }
    }

    @Test("names: letters, digits, '-', '_' in labels of 1…63, at most 253; nameSyntaxErr says why")
    func syntax() throws {
        #expect(try DNRNames.validated("Mail_1.example-host.org.", operation: "strToAddr").absolute)
        #expect(try !DNRNames.validated("a", operation: "strToAddr").absolute)
        for bad in [
            "", ".", "a..b", "exa mple.org", "bücher.example", "a/b", String(repeating: "x", count: 64) + ".org",
            Array(repeating: String(repeating: "y", count: 50), count: 5).joined(separator: ".") + ".ab",
        ] {
            expectMacTCPError(.nameSyntaxErr) { _ = try DNRNames.validated(bad, operation: "strToAddr") }
        }
        do {
            _ = try DNRNames.validated("a..b", operation: "strToAddr")
        } catch {
            #expect(error.detail?.contains("a label is empty") == true)
        }
    }

    @Test("localhost, invalid and onion are answered without a packet, names under them too")
    func specialNames() {
        #expect(DNRNames.special(DNSName("localhost")!) == .loopback)
        #expect(DNRNames.special(DNSName("db.LOCALHOST")!) == .loopback)
        #expect(DNRNames.special(DNSName("x.invalid")!) == .invalid)
        #expect(DNRNames.special(DNSName("abc.onion")!) == .onion)
        #expect(DNRNames.special(DNSName("localhost.example.org")!) == nil)
    }

    @Test("search candidates: fewer dots than ndots → the search domains first; otherwise the name first; absolute alone")
    func candidates() {
        let configuration = DNRConfiguration(searchDomains: ["corp.example", "example.org"], ndots: 2)
        let short = DNRNames.candidates(DNSName("db")!, absolute: false, configuration: configuration).map(\.description)
        #expect(short == ["db.corp.example", "db.example.org", "db"])
        let long = DNRNames.candidates(DNSName("a.b.c")!, absolute: false, configuration: configuration).map(\.description)
        #expect(long == ["a.b.c", "a.b.c.corp.example", "a.b.c.example.org"])
        #expect(DNRNames.candidates(DNSName("db")!, absolute: true, configuration: configuration).map(\.description) == ["db"])
        let one = DNRConfiguration(searchDomains: ["example.org"])
        #expect(
            DNRNames.candidates(DNSName("www.x")!, absolute: false, configuration: one).map(\.description) == [
                "www.x", "www.x.example.org",
            ])
    }

    @Test("/etc/hosts: an address and its names per line, comments, IPv6, names without case; bad lines skipped")
    func hostsFile() {
        let text = """
            127.0.0.1\tlocalhost
            ::1 localhost ip6-localhost # loopback
            192.0.2.10 Server.example.org server
            192.0.2.11 server.example.org
            not-an-address broken.example
            # 192.0.2.99 hidden.example
            """
        let table = SystemHosts.parse(hosts: text)
        #expect(table["localhost"] == ["127.0.0.1", "::1"])
        #expect(table["server.example.org"] == ["192.0.2.10", "192.0.2.11"])
        #expect(table["server"] == ["192.0.2.10"])
        #expect(table["broken.example"] == nil && table["hidden.example"] == nil)
        let machine = SystemHosts.parse(hosts: (try? String(contentsOfFile: "/etc/hosts", encoding: .utf8)) ?? "")
        #expect(machine["localhost"]?.isEmpty == false)
    }

    @Test("nsswitch.conf: the order of files and dns on the hosts line; other modules skipped; files dns by default")
    func nsswitch() {
        #expect(SystemHosts.parse(nsswitch: "passwd: files\nhosts:  dns [NOTFOUND=return] files mdns4\n") == [.dns, .files])
        #expect(SystemHosts.parse(nsswitch: "hosts: files myhostname\n") == [.files])
        #expect(SystemHosts.parse(nsswitch: "# hosts: dns\n") == [.files, .dns])
        #expect(SystemHosts.parse(nsswitch: "") == [.files, .dns])
    }
}
