// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The TCP engine: one connection's state (`Connection`), the turns that serialise sends and
// receives, the events a connection produces and the changes blocking and async calls wait
// for. It calls the system layer and the reactor, and delivers events through `Events/`; the
// public calls in `TCP/` are its only users.

import Synchronization

/// One connection of a stream: its socket and what the library knows about it.
///
/// `@unchecked Sendable`: the `let` properties are immutable; the send counters are touched
/// only by the thread holding the send turn (`sending`) and the receive cursor only by the one
/// holding the receive turn (`receiving`), each turn taken and given back under the state
/// lock, which orders one holder's accesses before the next one's; every other `var` is read
/// and written only while the owning stream's state lock (`TCPStream.core`) is held.
final class Connection: @unchecked Sendable {
    /// How a connection ended.
    enum End: Equatable {
        /// Both sides closed and every FIN was acknowledged.
        case graceful
        /// Reset, timed out or failed; pending calls get `connectionTerminated`.
        case abnormal(TCPTerminationReason)
    }

    /// What only the (serialised) receivers touch.
    struct ReceiveCursor {
        /// Inside an urgent region whose first result has been returned.
        var urgentMode = false
        /// The last read was small, and so the next is expected to be
        /// (``ByteArray/read(upTo:expectingSmall:from:)``).
        var expectsSmallReads = true
    }

    let descriptor: Descriptor
    let options: TCPOpenOptions
    let local: Endpoint
    let remote: Endpoint
    let passive: Bool
    let epoch: UInt64

    // Touched only by the holder of the receive turn:
    /// Where the receives are in the byte stream's urgent regions, and how large they read.
    var receiveCursor = ReceiveCursor()

    // Touched only by the holder of the send turn:
    /// Bytes handed to the kernel on this connection.
    var written: UInt64 = 0
    /// Whether acknowledgement reports are enabled on the socket.
    var ackReportsEnabled = false

    // Guarded by the stream's state lock:
    /// The reactor registration, made only when something needs the reactor.
    var registration: Reactor.Registration?
    /// A send holds the turn: one caller's bytes are never interleaved with another's.
    var sending = false
    /// A receive holds the turn: receives are served one at a time, in turn.
    var receiving = false
    /// The events the reactor watches on this connection (with `registration`); see
    /// `TCPStream.watch(_:_:)`.
    var watched: UInt32 = 0
    var weClosed = false
    var finAcknowledged = false
    var peerClosed = false
    var closingDelivered = false
    var end: End?
    var terminateDelivered = false
    /// Receives in progress, the turn's holder and those waiting for it.
    var receivers = 0
    /// Sends in progress, the turn's holder and those waiting for it.
    var senders = 0
    var dataArrivalArmed = true
    var urgentAnnounced = false
    var urgentDiscovered = false
    /// Bytes written before acknowledgement reports were enabled (their offsets count from here).
    var ackBase: UInt64 = 0
    /// Every byte below this count is known to be acknowledged.
    var ackedThrough: UInt64 = 0
    var ulpTimer: Reactor.Timer?
    var ulpLastAcked: UInt64 = 0
    var ulpLastProgress = ContinuousClock.now

    init(
        descriptor: Descriptor,
        registration: Reactor.Registration?,
        watched: UInt32,
        options: TCPOpenOptions,
        local: Endpoint,
        remote: Endpoint,
        passive: Bool,
        epoch: UInt64
    ) {
        self.descriptor = descriptor
        self.registration = registration
        self.watched = watched
        self.options = options
        self.local = local
        self.remote = remote
        self.passive = passive
        self.epoch = epoch
    }

    /// The two kinds of call that take turns on a connection: sends (one caller's bytes are
    /// never interleaved with another's) and receives (the urgent-region bookkeeping needs
    /// one reader at a time, and MacTCP queued a stream's receives in order). Calls of a kind
    /// are served one at a time, in the order they take the turn.
    enum Turn {
        case send
        case receive
    }

    /// Counts a call of `turn`'s kind and takes the turn if it is free (true). Called with the
    /// stream's state lock held.
    @inline(__always)
    func enter(_ turn: Turn) -> Bool {
        switch turn {
        case .send: senders += 1
        case .receive: receivers += 1
        }
        return take(turn)
    }

    /// Takes the turn if it is free, for a call already counted. Called with the stream's
    /// state lock held.
    @inline(__always)
    func take(_ turn: Turn) -> Bool {
        switch turn {
        case .send:
            if sending { return false }
            sending = true
        case .receive:
            if receiving { return false }
            receiving = true
        }
        return true
    }

    /// Uncounts a call, giving the turn back if it held it; true when another call of the
    /// kind waits for the turn (and must be told). Called with the stream's state lock held.
    @inline(__always)
    func leave(_ turn: Turn, holdingTurn: Bool) -> Bool {
        switch turn {
        case .send:
            if holdingTurn { sending = false }
            senders -= 1
            return holdingTurn && senders > 0
        case .receive:
            if holdingTurn { receiving = false }
            receivers -= 1
            return holdingTurn && receivers > 0
        }
    }

    var isAbnormallyEnded: Bool {
        if case .abnormal = end { return true }
        return false
    }

    /// Records an acknowledgement report: the byte at `offset` (counted from `ackBase`,
    /// modulo 2^32) and all before it have been acknowledged.
    func recordAck(offset: UInt32) {
        let candidate = UInt32(truncatingIfNeeded: ackBase) &+ offset &+ 1
        let delta = candidate &- UInt32(truncatingIfNeeded: ackedThrough)
        if delta > 0 && delta < 1 << 31 { ackedThrough += UInt64(delta) }
    }
}
