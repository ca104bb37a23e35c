// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// Something the reactor tells about readiness of a descriptor it watches.
///
/// `handle(events:)` runs on the reactor thread: it must not block, and it must not call
/// the ASR (events go through the stream's ``EventDelivery``).
protocol ReactorHandler: AnyObject, Sendable {
    /// Handles the epoll events (`EPOLLIN`, `EPOLLPRI`, …) reported for the descriptor.
    func handle(events: UInt32)
}

/// Names of the epoll event bits, from the C shim.
enum EpollEvents {
    static let input = UInt32(0x001)
    static let priority = UInt32(0x002)
    static let output = UInt32(0x004)
    static let error = UInt32(0x008)
    static let hangUp = UInt32(0x010)
    static let readHangUp = UInt32(0x2000)
    static let edgeTriggered = UInt32(1) << 31

    /// A connection's data, urgent data, the peer's FIN and its state changes: watched when
    /// someone listens for events (an ASR, the event sequence) or async calls suspend on it.
    /// A connection nobody listens to is not watched at all (each arriving segment would
    /// otherwise wake the reactor for nothing): its blocking calls see everything themselves.
    static let connectionWithData = input | priority | output | readHangUp | edgeTriggered
    /// State changes only (a connect finished, our FIN acknowledged): `EPOLLOUT` with
    /// edge triggering reports every state change of a socket that can write.
    static let stateChanges = output | edgeTriggered
    /// Errors only (acknowledgement reports, ICMP): `EPOLLERR` needs no interest bit.
    static let errors = edgeTriggered
    /// A listening socket: new connections only.
    static let listener = input | edgeTriggered
}
