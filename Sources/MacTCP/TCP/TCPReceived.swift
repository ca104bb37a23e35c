// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The result of ``TCPStream/receive(timeout:maxLength:)-71ulw``: MacTCP's `(data, urgent, mark)`.
///
/// Urgent data (every byte up to the urgent pointer, RFC 793) never shares a result with
/// normal data. The first result of an urgent region has ``urgent`` set; the result that ends
/// with the region's last byte has ``mark`` set; both are set when one result holds the whole
/// region, and results in between have neither.
public struct TCPReceived: Sendable, Equatable {
    /// The bytes received, at least one.
    public var data: [UInt8]
    /// This result starts an urgent region.
    public var urgent: Bool
    /// This result ends with the last byte of an urgent region (the urgent mark).
    public var mark: Bool

    /// Creates a result.
    public init(data: [UInt8], urgent: Bool, mark: Bool) {
        self.data = data
        self.urgent = urgent
        self.mark = mark
    }
}

/// The result of ``TCPStream/receive(into:timeout:)-(_,Duration)``: how many bytes were written into the
/// caller's buffer, with MacTCP's urgent and mark flags (the same rules as ``TCPReceived``'s).
public struct TCPReceivedCount: Sendable, Equatable {
    /// The bytes written at the start of the buffer, at least one.
    public var count: Int
    /// This result starts an urgent region.
    public var urgent: Bool
    /// This result ends with the last byte of an urgent region (the urgent mark).
    public var mark: Bool

    /// Creates a result.
    public init(count: Int, urgent: Bool, mark: Bool) {
        self.count = count
        self.urgent = urgent
        self.mark = mark
    }
}
