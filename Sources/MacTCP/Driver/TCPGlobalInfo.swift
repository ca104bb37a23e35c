// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// MacTCP's driver-wide TCP information: ``TCPParam`` and ``TCPStats``.
public struct TCPGlobalInfo: Sendable {
    /// The TCP parameters.
    public var parameters: TCPParam
    /// The TCP counters since the system started.
    public var statistics: TCPStats
}

/// MacTCP's TCPParam, from the kernel's settings.
public struct TCPParam: Sendable {
    /// The retransmission-timeout algorithm: `Tcp: RtoAlgorithm` of /proc/net/snmp (1 is
    /// "other", Linux's own; MacTCP gave a name).
    public var tcpRtoA: Int
    /// The smallest retransmission timeout in milliseconds: `Tcp: RtoMin` (200 on Linux).
    public var tcpRtoMin: Int
    /// The largest retransmission timeout in milliseconds: `Tcp: RtoMax` (120,000 on Linux).
    public var tcpRtoMax: Int
    /// The largest segment this TCP receives on the primary interface: its MTU minus the IP
    /// and TCP headers (40 bytes).
    public var tcpMaxSegSize: Int
    /// The most streams: Linux has no fixed table (`Tcp: MaxConn` is -1), so this is the
    /// process's descriptor limit (RLIMIT_NOFILE), one descriptor per stream.
    public var tcpMaxConn: Int
    /// The largest receive buffer TCP may grow to: the third value of
    /// /proc/sys/net/ipv4/tcp_rmem (the window offered stays below it).
    public var tcpMaxWindow: Int
}

/// MacTCP's TCPStats, from the kernel's counters since the system started (all processes).
///
/// Linux counts some things MacTCP counted differently; each field says what it is made of.
/// A field Linux does not count at all is nil.
public struct TCPStats: Sendable {
    /// Outgoing connections attempted: `Tcp: ActiveOpens` of /proc/net/snmp.
    public var tcpConnAttempts: Int
    /// Outgoing connections opened: `ActiveOpens − AttemptFails` (AttemptFails also counts
    /// failed incoming handshakes, so this is a lower bound).
    public var tcpConnOpened: Int
    /// Incoming connections accepted: `Tcp: PassiveOpens`.
    public var tcpConnAccepted: Int
    /// Connections closed gracefully: every connection opened or accepted, minus those still
    /// open (`CurrEstab`) and those aborted (``tcpConnAborted``).
    public var tcpConnClosed: Int
    /// Connections aborted: `Tcp: EstabResets` plus `TcpExt: TCPAbortOnTimeout` of
    /// /proc/net/netstat.
    public var tcpConnAborted: Int
    /// Octets received: `IpExt: InOctets` of /proc/net/netstat — all IPv4 traffic with its
    /// headers, since Linux has no TCP-only byte counter (an upper bound).
    public var tcpOctetsIn: Int
    /// Octets sent: `IpExt: OutOctets` — all IPv4 traffic with its headers (an upper bound).
    public var tcpOctetsOut: Int
    /// Duplicate octets received: not counted by Linux (nil).
    public var tcpOctetsInDup: Int?
    /// Octets retransmitted: not counted system-wide by Linux (nil; each connection's is in
    /// its `tcp_info`).
    public var tcpOctetsRetrans: Int?
    /// Segments received, acknowledgements included: `Tcp: InSegs`.
    public var tcpInputPkts: Int
    /// Segments sent, acknowledgements included: `Tcp: OutSegs`.
    public var tcpOutputPkts: Int
    /// Segments carrying only duplicate data: `TcpExt: TCPDSACKOldSent + TCPDSACKOfoSent`
    /// (the duplicates this side reported with D-SACK).
    public var tcpDupPkts: Int
    /// Segments retransmitted: `Tcp: RetransSegs`.
    public var tcpRetransPkts: Int
}
