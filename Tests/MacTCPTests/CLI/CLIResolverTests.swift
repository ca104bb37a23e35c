// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Testing

@testable import MacTCP

/// `mactcp dnr` against a real server (dnsmasq on loopback, always named with `--server`, so
/// that nothing is asked of the machine's own resolver).
@Suite(
    "mactcp dnr", .serialized, .timeLimit(.minutes(1)),
    .enabled(if: TestDNSServer.isAvailable, "needs dnsmasq (Debian's dnsmasq-base)"))
struct CLIResolverTests {
    static func records() -> [String] {
        DNRTests.records() + [
            "--dns-rr=evil.test,16,0a1b5b324a1b5d303b7077", "--local=/in-addr.arpa/", "--local=/ip6.arpa/",
            "--ptr-record=6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa,six.test",
        ]
    }

    private func dnr(_ server: TestDNSServer, _ arguments: [String]) throws -> (status: Int32, out: String, err: String) {
        try Tool.start(["dnr", "--server", server.nameServer] + arguments).finish()
    }

    @Test("a name's addresses (StrToAddr), a type's records in master-file text, a reverse lookup, one per line")
    func answers() throws {
        let server = try TestDNSServer(Self.records())
        let addresses = try dnr(server, ["alias.test"])
        #expect(addresses.status == 0 && addresses.out == "10.0.0.1\n", "\(addresses)")
        let mail = try dnr(server, ["--type", "mx", "mail.test"])
        #expect(mail.status == 0 && Set(mail.out.split(separator: "\n")) == ["10 mx1.test.", "10 mx2.test.", "20 mx9.test."])
        let info = try dnr(server, ["--type", "HINFO", "h.test"])
        #expect(info.out == "\"x86\" \"Linux\"\n")
        let reverse = try dnr(server, ["--reverse", "10.0.0.1"])
        #expect(reverse.status == 0 && reverse.out == "one.test.\n", "\(reverse)")
        let reverse6 = try dnr(server, ["--reverse", "fd00::6"])
        #expect(reverse6.status == 0 && reverse6.out == "six.test.\n", "\(reverse6)")
    }

    @Test("failures exit with their documented status and name the MacTCP code: 68 no such name, 75 no answer, 64 bad input")
    func failures() throws {
        let server = try TestDNSServer(Self.records())
        let missing = try dnr(server, ["missing.test."])
        #expect(missing.status == 68 && missing.out.isEmpty && missing.err.contains("authNameErr (-23045)"), "\(missing)")
        let silent = try UDPStream()
        defer { silent.release() }
        let start = Date()
        let quiet = try Tool.start(["dnr", "--server", "127.0.0.1:\(silent.port)", "--timeout", "1", "one.test."]).finish()
        #expect(quiet.status == 75 && quiet.err.contains("noAnsErr (-23046)"), "\(quiet)")
        #expect(Date().timeIntervalSince(start) < 15)
        let malformed = try dnr(server, ["bad..name"])
        #expect(malformed.status == 64 && malformed.err.contains("nameSyntaxErr"))
        for arguments in [["--server", "999.1.1.1", "x.test"], ["--type", "NOPE", "x.test"], ["x.test", "--reverse", "10.0.0.1"], []] {
            let bad = try Tool.start(["dnr"] + arguments).finish()
            #expect(bad.status == 64, "\(arguments): \(bad)")
        }
    }

    @Test("--json is one object with MacTCP's fields; --cache lists what the answer left in the cache")
    func json() throws {
        let server = try TestDNSServer(Self.records())
        let run = try dnr(server, ["--json", "--cache", "alias.test."])
        #expect(run.status == 0)
        let object = try #require(JSONSerialization.jsonObject(with: Data(run.out.utf8)) as? [String: Any], "\(run.out)")
        #expect(object["rtnCode"] as? Int == 0 && object["cname"] as? String == "one.test")
        #expect(object["addresses"] as? [String] == ["10.0.0.1"] && object["cacheFault"] as? Bool == true)
        let cache = try #require(object["cache"] as? [[String: Any]])
        #expect(cache.compactMap { $0["data"] as? String }.contains("10.0.0.1"))
        let failed = try dnr(server, ["--json", "missing.test."])
        let failure = try #require(JSONSerialization.jsonObject(with: Data(failed.out.utf8)) as? [String: Any], "\(failed.out)")
        #expect(failed.status == 68 && failure["rtnCode"] as? Int == -23045 && failure["error"] as? String == "authNameErr")
    }

    @Test("a record meant for the terminal (escape sequences in TXT) is printed escaped, never raw")
    func terminalBytes() throws {
        let server = try TestDNSServer(Self.records())
        let run = try dnr(server, ["--type", "TXT", "evil.test."])
        #expect(run.status == 0 && !run.out.utf8.contains(0x1B) && run.out.contains("\\027[2J"), "\(run.out)")
    }

    @Test("--hosts-file: answers from MacTCP's Hosts file, its unreadable lines reported, a missing file a clear error")
    func hostsFile() throws {
        let path = NSTemporaryDirectory() + "/mactcp-cli-hosts-\(getpid())"
        defer { unlink(path) }
        try "files.test. A 10.4.4.4\nfiles.test. A nonsense\n".write(toFile: path, atomically: true, encoding: .utf8)
        let server = try TestDNSServer(Self.records())
        let run = try dnr(server, ["--hosts-file", path, "files.test."])
        #expect(run.status == 0 && run.out == "10.4.4.4\n" && run.err.contains("line 2"), "\(run)")
        let missing = try dnr(server, ["--hosts-file", "/nonexistent/Hosts", "files.test."])
        #expect(missing.status != 0 && missing.err.contains("ipNoCnfgErr") && missing.err.contains("/nonexistent/Hosts"), "\(missing)")
    }
}
