// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The answer to an ICMP echo: MacTCP's `ICMPParamBlock` results, with the round trip worked
/// out.
public struct ICMPEchoReply: Sendable, Equatable, CustomStringConvertible {
    /// When the request left (MacTCP's `echoRequestOut`): read just before it was sent.
    public var requestSent: ContinuousClock.Instant
    /// When the reply came (MacTCP's `echoReplyIn`): the kernel's time of arrival
    /// (`SO_TIMESTAMPNS`), not the moment a thread read it, as iputils' `ping` measures.
    public var replyReceived: ContinuousClock.Instant
    /// `replyReceived - requestSent`.
    public var roundTrip: Duration { replyReceived - requestSent }
    /// The data the reply carried back: always what was sent (a reply whose data differs is
    /// not taken for this echo's).
    public var echoedData: [UInt8]
    /// The reply's time to live (IPv4) or hop limit (IPv6); 0 when the kernel did not say.
    public var timeToLive: Int
    /// The host that answered: the destination.
    public var from: IPAddress
    /// The echo's sequence number.
    public var sequence: UInt16

    /// Creates a reply record.
    public init(
        requestSent: ContinuousClock.Instant, replyReceived: ContinuousClock.Instant, echoedData: [UInt8], timeToLive: Int,
        from: IPAddress, sequence: UInt16
    ) {
        self.requestSent = requestSent
        self.replyReceived = replyReceived
        self.echoedData = echoedData
        self.timeToLive = timeToLive
        self.from = from
        self.sequence = sequence
    }

    /// The reply as ping prints it, for example `64 bytes from ::1: icmp_seq=3 ttl=64
    /// time=0.051 ms` (the size counts the 8-byte ICMP header).
    public var description: String {
        let nanoseconds = Double(roundTrip.components.seconds) * 1e9 + Double(roundTrip.components.attoseconds) / 1e9
        let milliseconds = nanoseconds / 1e6
        return
            "\(echoedData.count + 8) bytes from \(from): icmp_seq=\(sequence) ttl=\(timeToLive) time=\(ICMPEchoReply.format(milliseconds)) ms"
    }

    /// Milliseconds with three decimals, as ping prints them.
    static func format(_ milliseconds: Double) -> String {
        let thousandths = Int((milliseconds * 1000).rounded())
        let fraction = String(thousandths % 1000)
        return "\(thousandths / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
