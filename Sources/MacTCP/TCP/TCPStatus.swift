// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// MacTCP's connection states, with MacTCP's numbering.
public enum TCPConnectionState: Int, Sendable {
    /// No connection exists on this stream.
    case closed = 0
    /// A passive open is waiting for a connection.
    case listen = 2
    /// An incoming connection is being established (never observable on Linux, which
    /// completes the handshake before a stream takes the connection).
    case synReceived = 4
    /// An outgoing connection is being established.
    case synSent = 6
    /// The connection is up.
    case established = 8
    /// This side closed; its FIN is not yet acknowledged.
    case finWait1 = 10
    /// This side closed and its FIN was acknowledged.
    case finWait2 = 12
    /// The peer closed; this side may still send.
    case closeWait = 14
    /// Both closed at the same time; this side's FIN is not yet acknowledged.
    case closing = 16
    /// The peer closed first, then this side; its FIN is not yet acknowledged.
    case lastAck = 18
    /// Both sides closed (Linux shows this as closed on the stream's socket).
    case timeWait = 20

    /// Maps the kernel's `tcpi_state`.
    init(kernel: UInt8) {
        switch KernelTCPState(rawValue: kernel) {
        case .established: self = .established
        case .synSent: self = .synSent
        case .synReceived, .newSynReceived: self = .synReceived
        case .finWait1: self = .finWait1
        case .finWait2: self = .finWait2
        case .timeWait: self = .timeWait
        case .closeWait: self = .closeWait
        case .lastAck: self = .lastAck
        case .listen: self = .listen
        case .closing: self = .closing
        case .close, .boundInactive, nil: self = .closed
        }
    }
}

/// A snapshot of a stream's connection: MacTCP's TCPStatus block.
///
/// Values come from the kernel (`TCP_INFO`, `SIOCINQ`, `SIOCOUTQ`, `SIOCOUTQNSD`,
/// `getsockname`, `getpeername`). On a stream without a connection every field is zero and
/// the state is ``TCPConnectionState/closed``.
public struct TCPStatus: Sendable {
    /// The local IPv4 address (host byte order).
    public var localHost: UInt32 = 0
    /// The local port.
    public var localPort: UInt16 = 0
    /// The peer's IPv4 address (host byte order).
    public var remoteHost: UInt32 = 0
    /// The peer's port.
    public var remotePort: UInt16 = 0
    /// The local address of either family (``localHost`` is 0 for IPv6); `.v4(0)` when none.
    public var localAddress: IPAddress = .v4(0)
    /// The peer's address of either family (``remoteHost`` is 0 for IPv6); `.v4(0)` when none.
    public var remoteAddress: IPAddress = .v4(0)
    /// The type-of-service flags of the connection (``TypeOfService`` raw value).
    public var tosFlags: Int = 0
    /// The IP precedence of the connection, 0…7.
    public var precedence: Int = 0
    /// The state in MacTCP's numbering (0 closed … 20 time wait).
    public var connectionState: Int = 0
    /// Bytes the peer is currently willing to accept (its advertised window, `tcpi_snd_wnd`).
    public var sendWindow: Int = 0
    /// Bytes this side is currently willing to accept (its advertised window, `tcpi_rcv_wnd`;
    /// on kernels before 6.2, `tcpi_rcv_space`, an approximation).
    public var rcvWindow: Int = 0
    /// Bytes sent and not yet acknowledged (`SIOCOUTQ − SIOCOUTQNSD`, without our FIN).
    public var amtUnackedData: Int = 0
    /// Bytes received and not yet read (`SIOCINQ`).
    public var amtUnreadData: Int = 0
    /// SND.UNA relative to an initial send sequence number of 0: Linux does not expose
    /// absolute sequence numbers.
    public var sendUnacked: Int = 0
    /// SND.NXT relative to an initial send sequence number of 0.
    public var sendNext: Int = 0
    /// RCV.NXT relative to an initial receive sequence number of 0.
    public var rcvNext: Int = 0
    /// The congestion window in bytes (`tcpi_snd_cwnd × tcpi_snd_mss`).
    public var congestionWindow: Int = 0
    /// Smoothed round-trip time in milliseconds (`tcpi_rtt`, rounded up).
    public var srtt: Int = 0
    /// Last round-trip time in milliseconds. Linux does not expose the last sample; this is
    /// the smoothed value, the closest it offers.
    public var lastRTT: Int = 0
    /// The largest segment this side sends (`tcpi_snd_mss`).
    public var sendMaxSegSize: Int = 0
    /// The connection's ULP timeout in whole seconds.
    public var ulpTimeoutValue: Int = 0
    /// The connection's ULP action in MacTCP's numbering: 0 report, 1 abort.
    public var ulpTimeoutAction: Int = 0

    /// The state as a type.
    public var state: TCPConnectionState {
        TCPConnectionState(rawValue: connectionState) ?? .closed
    }

    /// The ULP action as a type.
    public var ulpAction: ULPAction {
        ULPAction(rawValue: ulpTimeoutAction) ?? .abort
    }

    /// A status with every field zero: state closed.
    public init() {}
}

extension TCPStatus: CustomStringConvertible {
    /// The status on one line, addresses as dotted quads (IPv6 in brackets), for example
    /// `TCPStatus(established, 127.0.0.1:7000 ↔ 127.0.0.1:40312, sendWindow 65483, …)`.
    public var description: String {
        "TCPStatus(\(state), \(Endpoint(localAddress, port: localPort)) ↔ \(Endpoint(remoteAddress, port: remotePort)), "
            + "sendWindow \(sendWindow), rcvWindow \(rcvWindow), amtUnackedData \(amtUnackedData), "
            + "amtUnreadData \(amtUnreadData), srtt \(srtt) ms)"
    }
}
