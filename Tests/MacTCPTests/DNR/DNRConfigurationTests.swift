// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Testing

@testable import MacTCP

/// `resolv.conf` as glibc reads it, checked line by line against `resolv.conf(5)`, and the
/// machine's own file read without a fault.
@Suite("units: resolver configuration")
struct DNRConfigurationTests {
    @Test("no file, an empty file or no nameserver line: 127.0.0.1 and ::1, glibc's defaults")
    func defaults() {
        for text in ["", "# nothing\n", "search example.org\noptions ndots:2\n"] {
            let configuration = DNRConfiguration.parse(resolvConf: text)
            #expect(configuration.nameServers == ["127.0.0.1", "::1"])
            #expect(configuration.attempts == 2 && configuration.timeout == .seconds(5) && !configuration.rotate)
        }
        #expect(DNRConfiguration.parse(resolvConf: "").ndots == 1)
    }

    @Test("nameserver: the first three, IPv4 and IPv6 (with a scope), anything else skipped")
    func nameServers() {
        let text = """
            nameserver 192.0.2.1   # a comment
            nameserver fd00::53%eth0
            nameserver not-an-address
            nameserver 999.1.1.1
            ; nameserver 192.0.2.9
            nameserver ::ffff:192.0.2.7
            nameserver 192.0.2.4
            """
        #expect(DNRConfiguration.parse(resolvConf: text).nameServers == ["192.0.2.1", "fd00::53%eth0", "::ffff:192.0.2.7"])
        for bad in ["1:2:3:4:5:6:7:8:9", "1::2::3", "12345::1", "::g", "1:2:3:4:5:6:7"] {
            #expect(!DNRConfiguration.isAddress(bad), "\(bad)")
        }
        for good in ["::", "::1", "1:2:3:4:5:6:7:8", "1::8", "fe80::1%lo", "64:ff9b::192.0.2.33"] {
            #expect(DNRConfiguration.isAddress(good), "\(good)")
        }
    }

    @Test("search and domain: the last line wins; `search --` clears; trailing dots dropped; LOCALDOMAIN replaces")
    func searchList() {
        #expect(
            DNRConfiguration.parse(resolvConf: "domain a.example\nsearch b.example. c.example\n").searchDomains == [
                "b.example", "c.example",
            ])
        #expect(DNRConfiguration.parse(resolvConf: "search b.example\ndomain a.example x.example\n").searchDomains == ["a.example"])
        #expect(DNRConfiguration.parse(resolvConf: "search b.example\nsearch --\n").searchDomains == [])
        #expect(DNRConfiguration.parse(resolvConf: "search a..b ok.example\n").searchDomains == ["ok.example"])
        let local = DNRConfiguration.parse(resolvConf: "search b.example\n", environment: ["LOCALDOMAIN": "x.example y.example"])
        #expect(local.searchDomains == ["x.example", "y.example"])
    }

    @Test("options: values capped as glibc caps them, flags set, unknown or malformed ignored; RES_OPTIONS wins")
    func options() {
        let text = "options ndots:20 timeout:0 attempts:9 rotate use-vc edns0 trust-ad no-aaaa bogus timeout:x ndots:-1\n"
        let configuration = DNRConfiguration.parse(resolvConf: text)
        #expect(configuration.ndots == 15)
        #expect(configuration.timeout == .seconds(1))
        #expect(configuration.attempts == 5)
        #expect(configuration.rotate && configuration.useTCP && configuration.edns && configuration.trustAD && configuration.noAAAA)
        #expect(!configuration.singleRequest && !configuration.noReload)
        let overridden = DNRConfiguration.parse(
            resolvConf: "options timeout:3 attempts:1\n", environment: ["RES_OPTIONS": "timeout:7 single-request no-reload"])
        #expect(overridden.timeout == .seconds(7) && overridden.attempts == 1)
        #expect(overridden.singleRequest && overridden.noReload)
        #expect(DNRConfiguration.parse(resolvConf: "options timeout:60\n").timeout == .seconds(30))
    }

    @Test("the machine's own /etc/resolv.conf is read without a fault: at least one server, each an address")
    func machine() throws {
        let text = (try? String(contentsOfFile: "/etc/resolv.conf", encoding: .utf8)) ?? ""
        let configuration = DNRConfiguration.parse(resolvConf: text)
        #expect(!configuration.nameServers.isEmpty && configuration.nameServers.count <= 3)
        #expect(configuration.nameServers.allSatisfy(DNRConfiguration.isAddress))
    }
}
