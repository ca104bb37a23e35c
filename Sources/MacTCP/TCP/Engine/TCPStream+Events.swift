// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import CMacTCP

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// How the library turns what the kernel reports into MacTCP's events and connection ends.
///
/// The reactor calls ``handle(events:)`` for every edge on a connection's socket; blocking
/// calls call ``observe(_:reported:forceAll:)`` when they wake for a reason of their own. Both end in
/// ``apply(_:reported:to:)``, which decides, under the stream's lock, what each observation
/// means: the exactly-once flags live in the `Connection` and are only changed there.
extension TCPStream: ReactorHandler {
    /// What one look at a socket found.
    struct Observation {
        var socketError: Int32 = 0
        var kernelState: UInt8?
        var unread: Int32?
        var urgentPending = false
        var acks: [UInt32] = []
        var icmp: [ICMPMessageType] = []
        /// The errno of the last ICMP error queued: reading the queue clears the socket's
        /// pending error when it held the same report.
        var icmpErrno: Int32 = 0
    }

    func handle(events: UInt32) {
        observe(nil, reported: events)
    }

    /// Starts the ULP report monitor of a new connection when its action is report.
    func startWatching(_ connection: Connection) {
        core.withLock { state in
            if isCurrent(connection, state), connection.options.ulpAction == .report {
                scheduleULPCheck(connection)
            }
        }
    }

    /// Looks at the socket for the events reported (or for everything, with `forceAll`),
    /// and applies what it found.
    ///
    /// The look and the decision happen under the stream's lock: `SO_ERROR` is consumed by
    /// reading it, so taking it and recording what it means must be one step, or a receive
    /// that finds end-of-file in between could not tell a reset from a graceful close.
    /// `connection` nil means the stream's current connection.
    func observe(_ expected: Connection?, reported: UInt32, forceAll: Bool = false) {
        core.withLock { state in
            if case .connecting = state.phase, reported != 0 {
                // An active open in progress: async calls wait for the connect to finish.
                signalChange(&state)
                return
            }
            guard case .connected(let connection) = state.phase, connection.end == nil,
                expected == nil || expected === connection
            else { return }
            let hangUp = reported & (EpollEvents.error | EpollEvents.hangUp | EpollEvents.readHangUp) != 0
            let wantState = forceAll || hangUp || (connection.weClosed && !connection.finAcknowledged)
            // SIOCINQ matters for .dataArrival (only while no receive runs) and for .closing.
            let wantUnread =
                forceAll || hangUp || (connection.peerClosed && !connection.closingDelivered)
                || (reported & EpollEvents.input != 0 && connection.receivers == 0 && connection.dataArrivalArmed)
            let wantUrgent =
                reported & EpollEvents.priority != 0 && connection.receivers == 0
                && !connection.urgentAnnounced && !connection.urgentDiscovered
            var observation = Observation()
            let looked: Void? = connection.descriptor.withDescriptor { fd in
                if forceAll || reported & EpollEvents.error != 0 {
                    serviceErrors(fd, into: &observation)
                }
                if wantState { observation.kernelState = Sys.tcpState(fd) }
                if wantUnread { observation.unread = Sys.inputQueue(fd) }
                if wantUrgent {
                    let ready = Sys.poll(fd, events: Sys.pollPri, timeoutMilliseconds: 0)
                    observation.urgentPending = ready > 0 && ready & Int(Sys.pollPri) != 0
                }
            }
            guard looked != nil else { return }
            if apply(observation, reported: reported, to: connection) || reported != 0 {
                signalChange(&state)
            }
        }
    }

    /// Drains the socket's error queue (acknowledgement reports, ICMP messages) and takes
    /// its pending error. This is the only place the library reads `SO_ERROR`.
    func serviceErrors(_ fd: Int32, into observation: inout Observation) {
        var entry = mt_errq_entry()
        while Sys.nextErrorQueueEntry(fd, &entry) == 1 {
            switch Int(entry.kind) {
            case Int(MT_ERRQ_ACK):
                observation.acks.append(entry.data)
            case Int(MT_ERRQ_ICMP):
                if let type = ICMPMessageType(icmpType: entry.icmp_type, code: entry.icmp_code, icmpv6: entry.icmp6 != 0) {
                    observation.icmp.append(type)
                }
                observation.icmpErrno = entry.err
            default:
                break
            }
        }
        let error = Sys.takeSocketError(fd)
        observation.socketError = error > 0 ? error : 0
    }

    /// Decides what an observation means for the connection and delivers the events.
    /// Called with the state lock held; returns whether blocked calls should look again.
    private func apply(_ observation: Observation, reported: UInt32, to connection: Connection) -> Bool {
        var wake = false
        for offset in observation.acks {
            connection.recordAck(offset: offset)
            wake = true
        }
        for type in observation.icmp {
            delivery.post(.icmpReceived, type.rawValue)
        }
        let kernelClosed = observation.kernelState == KernelTCPState.close.rawValue
        if observation.socketError != 0 {
            // A reset or a timeout ends the connection even if the state read a moment later
            // did not show it closed yet (the kernel files the error before the state): the
            // error is consumed by reading it, so it must be recorded now. Only ICMP reports
            // (with IP_RECVERR) leave a connection alive.
            if kernelClosed || observation.kernelState == nil || !SyscallErrors.isICMPReport(observation.socketError) {
                endAbnormally(connection, errno: observation.socketError)
                return true
            }
            if observation.icmp.isEmpty, SyscallErrors.isICMPReport(observation.socketError),
                let type = ICMPMessageType(errno: observation.socketError)
            {
                delivery.post(.icmpReceived, type.rawValue)
            }
        } else if kernelClosed && !connection.weClosed {
            // Reset or timed out, and a blocked call's recv or send took the error: that call
            // records the end. Nothing else can close a connection we did not close.
            return wake
        }
        if reported & EpollEvents.readHangUp != 0 { connection.peerClosed = true }
        if let kernel = observation.kernelState.flatMap(KernelTCPState.init(rawValue:)) {
            if kernel == .closeWait || kernel == .lastAck || kernel == .closing {
                connection.peerClosed = true
            }
            if connection.weClosed && !connection.finAcknowledged
                && (kernel == .finWait2 || kernel == .timeWait || kernel == .close)
            {
                connection.finAcknowledged = true
                wake = true
            }
            if kernel == .close && connection.weClosed {
                // Both FINs exchanged and acknowledged (TIME_WAIT, or after LAST_ACK).
                connection.peerClosed = true
                connection.end = .graceful
                wake = true
            }
        }
        // Urgent data is announced before the data arrival it came with.
        if observation.urgentPending && connection.receivers == 0 && !connection.urgentAnnounced
            && !connection.urgentDiscovered
        {
            connection.urgentAnnounced = true
            delivery.post(.urgent)
        }
        if let unread = observation.unread, unread > 0, connection.receivers == 0, connection.dataArrivalArmed {
            connection.dataArrivalArmed = false
            delivery.post(.dataArrival)
        }
        if connection.peerClosed && observation.unread == 0 {
            deliverClosing(connection)
        }
        finishGracefulEnd(connection)
        return wake
    }

    /// Delivers `.closing` once: the peer has closed and every byte has been read.
    /// Called with the state lock held.
    func deliverClosing(_ connection: Connection) {
        guard !connection.closingDelivered, !connection.isAbnormallyEnded else { return }
        connection.closingDelivered = true
        delivery.post(.closing)
        finishGracefulEnd(connection)
    }

    /// After a graceful end, `.terminate(ulpClose)` follows `.closing` (the connection is
    /// over for the user once both sides closed and every byte was read). Called with the
    /// state lock held.
    func finishGracefulEnd(_ connection: Connection) {
        guard connection.end == .graceful, connection.closingDelivered, !connection.terminateDelivered else { return }
        connection.terminateDelivered = true
        delivery.post(.terminate, TCPTerminationReason.ulpClose.rawValue)
        stopWatching(connection)
    }

    /// Ends the connection because of `errno` (reset, timeout, network failure): delivers
    /// `.terminate` with the reason and closes the socket. Called with the state lock held.
    func endAbnormally(_ connection: Connection, errno: Int32) {
        // A reset seen by a call's own recv or send is definitive, even if the reactor, which
        // found the socket closed after our close with its error already taken by that call,
        // had judged the end graceful.
        if connection.isAbnormallyEnded { return }
        let reason = Self.terminationReason(errno: errno, action: connection.options.ulpAction)
        connection.end = .abnormal(reason)
        if !connection.terminateDelivered {
            connection.terminateDelivered = true
            delivery.post(.terminate, reason.rawValue)
        }
        dispose(connection)
    }

    /// MacTCP's termination reason for the errno that ended a connection.
    static func terminationReason(errno: Int32, action: ULPAction) -> TCPTerminationReason {
        switch errno {
        case ECONNRESET, EPIPE, ECONNABORTED:
            return .remoteAbort
        case ETIMEDOUT:
            // The kernel's user timeout (our ULP timer) fired; without it, retransmissions
            // or keepalives ran out.
            return action == .abort ? .ulpTimeout : .networkFailure
        default:
            // After ICMP soft errors the kernel reports the ICMP errno instead of ETIMEDOUT.
            return SyscallErrors.isICMPReport(errno) && action == .abort ? .ulpTimeout : .networkFailure
        }
    }

    /// Handles a failed system call of a blocking call on a live connection. Returns nil
    /// when the errno was an ICMP report on a connection that lives on (the caller retries),
    /// otherwise the error to throw (the connection has ended).
    func failure(_ result: Int, on connection: Connection, operation: String) -> MacTCPError? {
        let error = Int32(-result)
        if SyscallErrors.isICMPReport(error) {
            let state = connection.descriptor.withDescriptor { Sys.tcpState($0) } ?? nil
            if let state, state != KernelTCPState.close.rawValue {
                core.withLock { stateValue in
                    if isCurrent(connection, stateValue), let type = ICMPMessageType(errno: error) {
                        delivery.post(.icmpReceived, type.rawValue)
                    }
                }
                return nil
            }
        }
        core.withLock { state in
            if isCurrent(connection, state) {
                endAbnormally(connection, errno: error)
                signalChange(&state)
            }
        }
        return MacTCPError.connectionTerminated.with(operation: operation, errno: error, detail: "the connection was broken")
    }

    /// The error for a call whose connection is gone: ended abnormally, or replaced (the
    /// stream was aborted or released while the call was blocked).
    func terminated(_ operation: String) -> MacTCPError {
        MacTCPError.connectionTerminated.with(operation: operation, detail: "the connection was broken")
    }

    // MARK: ULP timer, report action

    private static let ulpCheckInterval = Duration.milliseconds(100)

    /// Arms the next check of the report-action monitor. Called with the state lock held.
    func scheduleULPCheck(_ connection: Connection) {
        connection.ulpTimer = Reactor.shared.schedule(after: Self.ulpCheckInterval) { [weak self] in
            self?.checkULP(connection)
        }
    }

    /// The report action: while sent data (or our FIN) stays unacknowledged for the ULP
    /// period, deliver `.ulpTimeout` and start the period again. Progress is the kernel's
    /// count of acknowledged bytes.
    private func checkULP(_ connection: Connection) {
        var acked: UInt64 = 0
        var outstanding: Int32 = 0
        let looked: Void? = connection.descriptor.withDescriptor { fd in
            outstanding = Sys.outputQueue(fd)
            var info = mt_tcp_info()
            if outstanding > 0, Sys.tcpInfo(fd, &info) > 0 { acked = info.tcpi_bytes_acked }
        }
        core.withLock { state in
            guard looked != nil, isCurrent(connection, state), connection.end == nil else { return }
            let now = ContinuousClock.now
            if outstanding <= 0 || acked != connection.ulpLastAcked {
                connection.ulpLastAcked = acked
                connection.ulpLastProgress = now
            } else if now - connection.ulpLastProgress >= connection.options.ulpTimeout {
                connection.ulpLastProgress = now
                delivery.post(.ulpTimeout)
            }
            scheduleULPCheck(connection)
        }
    }
}
