// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The answer to ``DNR/query(_:type:)``, the general query beyond MacTCP's calls: typed
/// records with their TTLs, for any record type.
///
/// Done at once when no packet was needed, in flight otherwise, exactly as ``DNRResult``.
public final class DNRQuery: Sendable {
    private let flight: DNRFlight

    init(_ flight: DNRFlight) {
        self.flight = flight
    }

    /// Whether the answer has come (or the query has failed).
    public var isDone: Bool { flight.outcome != nil }

    /// Whether the call had to ask a name server: MacTCP's `cacheFault` return, against `noErr`
    /// for an answer that was ready when the call returned (a dotted quad, a special name, the
    /// hosts tables, the cache). Unlike ``isDone`` right after the call, it does not depend on
    /// how fast a server answers.
    public var cacheFault: Bool { !flight.settledAtOnce }

    /// Blocks until the answer comes, and returns its records.
    ///
    /// - Returns: The records: the CNAME chain from the name asked, then those of the type.
    /// - Throws: `MacTCPError` with the failure's code, as ``DNRResult/wait()-1feec`` does.
    @discardableResult
    public func wait() throws -> [DNRRecord] {
        try flight.wait().get().records.map { DNRRecord($0) }
    }

    /// Suspends until the answer comes, and returns its records.
    ///
    /// - Returns: The records, as the blocking `wait()` returns them.
    /// - Throws: `CancellationError` when the task is cancelled; otherwise as the blocking `wait()`.
    @discardableResult
    public func wait() async throws -> [DNRRecord] {
        try await flight.wait().get().records.map { DNRRecord($0) }
    }

    /// Calls `body` once when the answer has come (or the query has failed): before
    /// returning, on the caller's thread, when it is done already; otherwise on a library
    /// thread.
    ///
    /// - Parameter body: The completion, given this query.
    public func onDone(_ body: @escaping @Sendable (DNRQuery) -> Void) {
        flight.whenSettled { body(self) }
    }

    /// 0, or the MacTCP code of the failure (waits for the answer).
    public var rtnCode: Int {
        guard case .failure(let error) = flight.wait() else { return 0 }
        return error.code
    }

    /// The name the records are for, after CNAMEs, without the trailing dot; empty on
    /// failure (waits for the answer).
    public var cname: String { (try? flight.wait().get().canonicalName) ?? "" }

    /// The records, or none on failure (waits for the answer).
    public var records: [DNRRecord] { (try? wait()) ?? [] }
}
