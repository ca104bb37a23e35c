// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Testing

@testable import MacTCP

/// IP addresses as text (RFC 4291 read, RFC 5952 written), socket addresses as the resolver's
/// configuration spells them, and the order of RFC 6724 and RFC 8305 §4.
@Suite("Addresses as text, and the order to try them")
struct AddressingTests {
    @Test(
        "IPv6 text in RFC 5952's canonical form",
        arguments: [
            ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"), ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:0db8:0000:0000:0001:0000:0000:0001", "2001:db8::1:0:0:1"), ("0:0:0:0:0:0:0:0", "::"), ("::1", "::1"),
            ("fe80::", "fe80::"), ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"), ("1:0:0:2:0:0:0:3", "1:0:0:2::3"),
            ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
        ])
    func canonicalText(_ input: String, _ canonical: String) throws {
        let address = try #require(IPAddress(input))
        #expect(address.description == canonical && address.isIPv6)
        #expect(IPAddress(canonical) == address)
    }

    @Test(
        "malformed text is refused",
        arguments: ["1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", "g::1", ":1", "1:", "::1%nosuchif0", "1.2.3", "", "::ffff:1.2.3.256"])
    func refused(_ text: String) {
        #expect(IPAddress(text) == nil)
    }

    @Test("a v4-mapped address is its IPv4 address; a numeric scope is kept; the loopback interface's name is a scope")
    func mappedAndScoped() throws {
        #expect(IPAddress("::ffff:10.0.0.1") == .v4(0x0A00_0001))
        #expect(IPAddress("10.0.0.1") == .v4(0x0A00_0001) && IPAddress("10.0.0.1")?.ipv4 == 0x0A00_0001)
        guard case .v6(let scoped)? = IPAddress("fe80::1%lo") else {
            Issue.record("fe80::1%lo is not an address")
            return
        }
        #expect(scoped.scopeID == 1 && scoped.isLinkLocal && scoped.description == "fe80::1%lo")
        guard case .v6(let numbered)? = IPAddress("fe80::1%77") else { return }
        #expect(numbered.scopeID == 77 && numbered.description == "fe80::1%77")
        #expect(IPv6Address(bytes: [1, 2, 3]) == nil)
    }

    @Test("name servers: addr, addr:port, [v6]:port and a bare IPv6 address; port 0 and junk refused")
    func socketAddresses() {
        #expect(Endpoint(parsing: "10.0.0.1", defaultPort: 53)?.description == "10.0.0.1:53")
        #expect(Endpoint(parsing: "10.0.0.1:5353", defaultPort: 53)?.description == "10.0.0.1:5353")
        #expect(Endpoint(parsing: "::1", defaultPort: 53)?.description == "[::1]:53")
        #expect(Endpoint(parsing: "[2001:db8::1]:5300", defaultPort: 53)?.description == "[2001:db8::1]:5300")
        for bad in ["10.0.0.1:0", "10.0.0.1:x", "[::1", "[::1]x", "host.example", "010.0.0.1", "[10.0.0.1]:53"] {
            #expect(Endpoint(parsing: bad, defaultPort: 53) == nil, "\(bad)")
        }
    }

    @Test("RFC 6724: unreachable last, precedence (::1, IPv6, IPv4, 6to4, Teredo, ULA), smaller scope, longest prefix; then interleaved")
    func selection() throws {
        let global6 = try #require(IPAddress("2001:db8:1::10"))
        let other6 = try #require(IPAddress("2001:db8:ffff::10"))
        let ula = try #require(IPAddress("fd00::1"))
        let teredo = try #require(IPAddress("2001:0:1::1"))
        let sixToFour = try #require(IPAddress("2002:c000:221::1"))
        let v4 = IPAddress.v4(0x0A00_0001)
        let loopback4 = IPAddress.v4(IPv4.loopback)
        let unreachable = try #require(IPAddress("2001:db8:dead::1"))
        // Sources as a dual-stack host with a global IPv6 address would have them.
        let source6 = try #require(IPAddress("2001:db8:1::1"))
        let source: (IPAddress) -> IPAddress? = { destination in
            if destination == unreachable { return nil }
            if destination == .v6(.loopback) { return destination }
            return destination.isIPv6 ? source6 : .v4(0x0A00_0063)
        }
        let order = AddressSelection.ordered([unreachable, v4, teredo, ula, sixToFour, other6, global6, .v6(.loopback)], source: source)
        // Precedence first; between the two global IPv6 addresses, the longer prefix shared with
        // the source; the families interleave after the sort (IPv6 first, as the first is).
        // Sorted: ::1, then the IPv6 addresses whose label matches their source's (the one
        // sharing more of the source's prefix first), IPv4, then 6to4, Teredo and ULA, whose
        // labels do not match, by precedence; the unreachable one last.
        #expect(order == [.v6(.loopback), v4, global6, other6, sixToFour, teredo, ula, unreachable], "\(order)")
        // Rule 8: between two IPv4 addresses, the smaller scope (127/8 is link-local).
        #expect(AddressSelection.ordered([v4, loopback4], source: { $0 }) == [loopback4, v4])
        // Rule 10: equals keep the server's order; interleaving keeps each family's order.
        let a = IPAddress.v4(0x0A00_0002)
        #expect(AddressSelection.ordered([a, v4], source: { _ in .v4(0x0A00_0063) }) == [a, v4])
        #expect(AddressSelection.interleaved([global6, other6, ula, v4, a]) == [global6, v4, other6, a, ula])
    }
}
