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

    /// What every connected stream needs: the peer's FIN, errors, and the state-change
    /// wakeups that only `EPOLLOUT` reports (our FIN acknowledged, a connect finished).
    /// Data and urgent data (``connectionWithData``) are watched only when someone listens
    /// for them (an ASR, the event sequence, a suspended async call): otherwise every
    /// arriving segment would wake the reactor for nothing.
    static let connection = output | readHangUp | edgeTriggered
    /// ``connection`` plus data and urgent data.
    static let connectionWithData = connection | input | priority
    /// A listening socket: new connections only.
    static let listener = input | edgeTriggered
}
