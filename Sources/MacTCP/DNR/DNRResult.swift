// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The answer to one of MacTCP's resolver calls (`strToAddr`, `addrToName`, `hInfo`,
/// `mxInfo`): MacTCP's `hostInfo` and `returnRec` records, and Python's `macdnr` result.
///
/// A result is done at once when the answer needed no packet (a dotted quad, a cached or
/// hosts-table name: MacTCP's `noErr`); otherwise the query is in flight (MacTCP's
/// `cacheFault`) and the result is done when the answer comes. Reading a field before then
/// waits, as the Python object did; the fields never throw: a failure is in ``rtnCode``, and
/// ``wait()-1feec`` throws it.
///
/// ```swift
/// let result = try DNR.shared.strToAddr("localhost")
/// try result.wait()
/// print(IPv4.string(result.addresses[0]))  // → 127.0.0.1
/// ```
public final class DNRResult: Sendable {
    enum Kind: Sendable {
        case address, name, hinfo, mx
    }

    private let flight: DNRFlight
    private let kind: Kind
    /// Chooses among MX records of equal preference, once per result (SPEC §6: at random).
    private let tieBreak: Int

    init(_ flight: DNRFlight, kind: Kind) {
        self.flight = flight
        self.kind = kind
        tieBreak = kind == .mx ? Int.random(in: 0..<Int.max) : 0
    }

    /// Whether the answer has come (or the query has failed).
    public var isDone: Bool { flight.outcome != nil }

    /// Whether the call had to ask a name server: MacTCP's `cacheFault` return, against `noErr`
    /// for an answer that was ready when the call returned (a dotted quad, a special name, the
    /// hosts tables, the cache). Unlike ``isDone`` right after the call, it does not depend on
    /// how fast a server answers.
    public var cacheFault: Bool { !flight.settledAtOnce }

    /// Blocks until the result is done.
    ///
    /// - Throws: `MacTCPError` with the result's code when the query failed: `authNameErr`
    ///   (no such name or record), `noAnsErr` (no server answered), `dnrErr` (the servers
    ///   failed), `noNameServer`, `notOpenErr` (the resolver was closed).
    public func wait() throws {
        _ = try DNRAnswer.make(kind, flight.wait(), tieBreak: tieBreak).get()
    }

    /// Suspends until the result is done; other waiters and the query go on if the task is
    /// cancelled.
    ///
    /// - Throws: `CancellationError` when the task is cancelled; otherwise as ``wait()-1feec``.
    public func wait() async throws {
        _ = try await DNRAnswer.make(kind, flight.wait(), tieBreak: tieBreak).get()
    }

    /// Calls `body` once when the result is done: MacTCP's `ResultProc`. On a result that
    /// is done already, `body` runs before `onDone` returns, on the caller's thread;
    /// otherwise on a library thread.
    ///
    /// - Parameter body: The completion, given this result.
    public func onDone(_ body: @escaping @Sendable (DNRResult) -> Void) {
        flight.whenSettled { body(self) }
    }

    private var answer: Result<DNRAnswer, MacTCPError> { DNRAnswer.make(kind, flight.wait(), tieBreak: tieBreak) }

    /// 0, or the MacTCP code of the failure (waits for the result).
    public var rtnCode: Int {
        guard case .failure(let error) = answer else { return 0 }
        return error.code
    }

    /// The official name, without the trailing dot: the name the answer was for, after
    /// CNAMEs; for ``DNR/addrToName(_:)``, the name the address points to. Empty on failure.
    public var cname: String { (try? answer.get().cname) ?? "" }

    /// The IPv4 addresses (A records) in the server's order, at most ``DNR/maxAddresses``;
    /// empty for the other calls and on failure.
    public var addresses: [UInt32] { (try? answer.get().addresses) ?? [] }

    /// The host's CPU type (``DNR/hInfo(_:)``).
    public var cpuType: String { (try? answer.get().cpuType) ?? "" }

    /// The host's operating system (``DNR/hInfo(_:)``).
    public var osType: String { (try? answer.get().osType) ?? "" }

    /// The preference of the mail exchange (``DNR/mxInfo(_:)``): the lowest there is.
    public var preference: UInt16 { (try? answer.get().preference) ?? 0 }

    /// The mail exchange of lowest preference (``DNR/mxInfo(_:)``), one at random among
    /// equals; MacTCP returned one.
    public var exchange: String { (try? answer.get().exchange) ?? "" }
}

/// A result's fields, read from the resolver's outcome for the kind of call.
struct DNRAnswer {
    var cname = ""
    var addresses: [UInt32] = []
    var cpuType = ""
    var osType = ""
    var preference: UInt16 = 0
    var exchange = ""

    static func make(_ kind: DNRResult.Kind, _ outcome: DNRFlight.Outcome, tieBreak: Int) -> Result<DNRAnswer, MacTCPError> {
        let found: Resolver.Outcome
        switch outcome {
        case .failure(let error): return .failure(error)
        case .success(let value): found = value
        }
        var answer = DNRAnswer(cname: found.canonicalName)
        switch kind {
        case .address:
            answer.addresses = Array(
                found.records.compactMap { record -> UInt32? in
                    guard case .a(let address) = record.data else { return nil }
                    return address
                }
                .prefix(DNR.maxAddresses))
        case .name:
            guard let pointer = found.records.first(where: { $0.type == .ptr }), case .name(let target) = pointer.data else {
                return .failure(MacTCPError.authNameErr.with(operation: "addrToName", detail: "\(found.canonicalName): no PTR record"))
            }
            answer.cname = target.description
        case .hinfo:
            guard let info = found.records.first(where: { $0.type == .hinfo }), case .hinfo(let cpu, let os) = info.data else {
                return .failure(MacTCPError.authNameErr.with(operation: "hInfo", detail: "\(found.canonicalName): no HINFO record"))
            }
            answer.cpuType = String(decoding: cpu, as: UTF8.self)
            answer.osType = String(decoding: os, as: UTF8.self)
        case .mx:
            let exchanges = found.records.compactMap { record -> (UInt16, DNSName)? in
                guard case .mx(let preference, let exchange) = record.data else { return nil }
                return (preference, exchange)
            }
            guard let lowest = exchanges.map(\.0).min() else {
                return .failure(MacTCPError.authNameErr.with(operation: "mxInfo", detail: "\(found.canonicalName): no MX record"))
            }
            let equals = exchanges.filter { $0.0 == lowest }
            let chosen = equals[tieBreak % equals.count]
            // A null MX (RFC 7505: preference 0, exchange ".") says the domain takes no mail.
            if chosen.1.isRoot {
                return .failure(
                    MacTCPError.authNameErr.with(
                        operation: "mxInfo", detail: "\(found.canonicalName) accepts no mail (a null MX, RFC 7505)"))
            }
            answer.preference = lowest
            answer.exchange = chosen.1.description
        }
        return .success(answer)
    }
}
