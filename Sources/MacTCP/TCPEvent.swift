#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// An event the MacTCP driver reports to a stream's ASR (asynchronous service routine).
///
/// The ASR receives the event and a detail: the ``TCPTerminationReason`` raw value for
/// ``terminate``, the ICMP message type in MacTCP numbering (``ICMPMessageType``) for
/// ``icmpReceived``, the result code (0 or a ``MacTCPError`` code) for ``passiveOpenDone``,
/// and 0 otherwise.
public enum TCPEvent: Int, Sendable {
    /// The peer has closed and every byte has been read; exactly once per connection.
    /// The corresponding MacTCP event is `TCPClosing`.
    case closing = 1
    /// Report action only: outstanding data was not acknowledged for the ULP period;
    /// repeats each period while that lasts. The corresponding MacTCP event is `TCPULPTimeout`.
    case ulpTimeout = 2
    /// The connection is gone; exactly once per connection, with the reason as the detail.
    /// The corresponding MacTCP event is `TCPTerminate`.
    case terminate = 3
    /// Data arrived while no `receive` was in progress; not repeated until a `receive` has
    /// returned. The corresponding MacTCP event is `TCPDataArrival`.
    case dataArrival = 4
    /// Urgent data was discovered while no `receive` was in progress; once per urgent region.
    /// The corresponding MacTCP event is `TCPUrgent`.
    case urgent = 5
    /// An ICMP error concerning this connection arrived; the detail is the message type.
    /// The corresponding MacTCP event is `TCPICMPReceived`.
    case icmpReceived = 6
    /// A passive open completed (detail 0) or failed (detail: the error code). This is the
    /// Python `mactcp` module's addition, `PassiveOpenDone`.
    case passiveOpenDone = 32766
}

/// Why a connection ended: the detail of a ``TCPEvent/terminate`` event.
public enum TCPTerminationReason: Int, Sendable {
    /// The peer reset the connection. MacTCP's `TCPRemoteAbort`.
    case remoteAbort = 2
    /// The network failed (a retransmission timeout without a ULP timeout, an unreachable
    /// path). MacTCP's `TCPNetworkFailure`.
    case networkFailure = 3
    /// Security or precedence mismatch; never produced on Linux. MacTCP's `TCPSecPrecMismatch`.
    case securityPrecedenceMismatch = 4
    /// The ULP timer expired with the abort action. MacTCP's `TCPULPTimeoutTerminate`.
    case ulpTimeout = 5
    /// This side called `abort()` or `release()`. MacTCP's `TCPULPAbort`.
    case ulpAbort = 6
    /// Both sides closed gracefully. MacTCP's `TCPULPClose`.
    case ulpClose = 7
    /// An unexpected connection-initiation segment; never produced on Linux.
    /// MacTCP's `TCPServiceError`.
    case serviceError = 8
}

/// ICMP message types in MacTCP's numbering: the detail of ``TCPEvent/icmpReceived``.
public enum ICMPMessageType: Int, Sendable {
    /// Destination network unreachable.
    case netUnreach = 0
    /// Destination host unreachable.
    case hostUnreach = 1
    /// Protocol unreachable.
    case protocolUnreach = 2
    /// Port unreachable.
    case portUnreach = 3
    /// Fragmentation needed and Don't Fragment set.
    case fragReqd = 4
    /// Source route failed.
    case sourceRouteFailed = 5
    /// Time to live exceeded in transit.
    case timeExceeded = 6
    /// Parameter problem in the IP header.
    case parmProblem = 7
    /// A required IP option is missing.
    case missingOption = 8

    /// Maps an ICMP type and code (RFC 792) to MacTCP's numbering.
    init?(icmpType: UInt8, code: UInt8) {
        switch (icmpType, code) {
        case (3, 0), (3, 6), (3, 9), (3, 11): self = .netUnreach
        case (3, 1), (3, 7), (3, 8), (3, 10), (3, 12), (3, 13), (3, 14), (3, 15): self = .hostUnreach
        case (3, 2): self = .protocolUnreach
        case (3, 3): self = .portUnreach
        case (3, 4): self = .fragReqd
        case (3, 5): self = .sourceRouteFailed
        case (11, _): self = .timeExceeded
        case (12, 1): self = .missingOption
        case (12, _): self = .parmProblem
        default: return nil
        }
    }

    /// The best guess from the errno the kernel reports for an ICMP error on a TCP socket
    /// (Linux does not queue the ICMP message itself for TCP connections).
    init?(errno: Int32) {
        switch errno {
        case ENETUNREACH: self = .netUnreach
        case EHOSTUNREACH, EHOSTDOWN, ENONET: self = .hostUnreach
        case ENOPROTOOPT: self = .protocolUnreach
        case ECONNREFUSED: self = .portUnreach
        case EMSGSIZE: self = .fragReqd
        case EOPNOTSUPP: self = .sourceRouteFailed
        case EPROTO: self = .parmProblem
        default: return nil
        }
    }
}
