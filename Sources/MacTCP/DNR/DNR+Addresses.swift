// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

extension DNR {
    /// A name's addresses of both families, in the order to try them: for connecting by name.
    ///
    /// A and AAAA are asked at once (one after the other with `options single-request`; AAAA
    /// not at all with `no-aaaa`). It returns when both are answered, or 50 ms after the first
    /// family has answered with addresses if the other lags (RFC 8305's resolution delay; the
    /// late answer still reaches the cache). The addresses are sorted by RFC 6724's rules and
    /// the families interleaved, the first family first (see the resolver article).
    ///
    /// - Parameter name: A host name, or an address literal (IPv4 dotted quad, IPv6 with an
    ///   optional `%scope`), which is returned as it is.
    /// - Returns: At least one address.
    /// - Throws: `MacTCPError.nameSyntaxErr` for a malformed name; `notOpenErr` after
    ///   ``close()``; when both families fail, the more telling failure (a server's over "no
    ///   such record": `noAnsErr` or `dnrErr` before `authNameErr`); `CancellationError`.
    ///
    /// There is no corresponding MacTCP call; MacTCP knew IPv4 only (``strToAddr(_:)``).
    public func addresses(for name: String) async throws -> [IPAddress] {
        if let v4 = DNRNames.dottedQuad(name) { return [.v4(v4)] }
        if name.contains(":"), let literal = IPAddress(name) { return [literal] }
        let configuration = self.configuration
        let v4 = try query(name, type: .a)
        let v6 = configuration.noAAAA ? nil : try query(name, type: .aaaa)
        var results: [Bool: Result<[IPAddress], any Error>] = [:]
        if configuration.singleRequest {
            results[false] = await Self.addresses(of: v4)
            if let v6 { results[true] = await Self.addresses(of: v6) }
        } else {
            results = await Self.race(v4, v6)
        }
        let found = (try? results[true]?.get() ?? []) ?? []
        let all = ((try? results[false]?.get()) ?? []) + found
        if !all.isEmpty { return AddressSelection.ordered(all) }
        try Task.checkCancellation()
        let failures = [results[false], results[true]].compactMap { result -> (any Error)? in
            guard case .failure(let error)? = result else { return nil }
            return error
        }
        if let telling = failures.first(where: { !(($0 as? MacTCPError) == .authNameErr) }) { throw telling }
        throw failures.first ?? MacTCPError.authNameErr.with(operation: "addresses", detail: "\(name): no A or AAAA record")
    }

    /// Both queries awaited at once, keyed by "is IPv6"; the lagging one given up 50 ms
    /// after the other answered with addresses.
    private static func race(_ v4: DNRQuery, _ v6: DNRQuery?) async -> [Bool: Result<[IPAddress], any Error>] {
        await withTaskGroup(of: (Bool, Result<[IPAddress], any Error>)?.self) { group in
            group.addTask { (false, await addresses(of: v4)) }
            if let v6 { group.addTask { (true, await addresses(of: v6)) } }
            let expected = v6 == nil ? 1 : 2
            var results: [Bool: Result<[IPAddress], any Error>] = [:]
            var delayed = false
            while let next = await group.next() {
                guard let (isIPv6, result) = next else { break }  // the resolution delay is over
                results[isIPv6] = result
                if results.count == expected { break }
                if !delayed, case .success(let found) = result, !found.isEmpty {
                    delayed = true
                    group.addTask {
                        try? await Task.sleep(for: resolutionDelay)
                        return nil
                    }
                }
            }
            group.cancelAll()
            return results
        }
    }

    /// RFC 8305 §3's resolution delay.
    static let resolutionDelay = Duration.milliseconds(50)

    private static func addresses(of query: DNRQuery) async -> Result<[IPAddress], any Error> {
        do {
            let records = try await query.wait()
            return .success(
                records.compactMap { record in
                    switch record.value {
                    case .a(let v4): return .v4(v4)
                    case .aaaa(let bytes): return IPv6Address(bytes: bytes).map(IPAddress.v6)
                    default: return nil
                    }
                })
        } catch {
            return .failure(error)
        }
    }
}
