// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

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
