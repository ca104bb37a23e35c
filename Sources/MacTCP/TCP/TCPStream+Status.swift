// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import CMacTCP

extension TCPStream {
    /// A snapshot of the connection's state, windows, queues and timers.
    ///
    /// On a stream without a connection (never opened, or after its connection ended) the
    /// state is ``TCPConnectionState/closed`` and every field is zero; while a passive open
    /// waits, the state is ``TCPConnectionState/listen`` with the local address.
    ///
    /// - Returns: The status, read from the kernel now.
    /// - Throws: ``MacTCPError/invalidStreamPtr`` after `release()`.
    ///
    /// The corresponding MacTCP call is `TCPStatus`.
    public func status() throws -> TCPStatus {
        let operation = "status"
        enum Source {
            case none
            case listening(Endpoint, TCPOpenOptions)
            case connecting(Descriptor?)
            case connected(Connection, weClosed: Bool)
        }
        settlePassiveOpen()
        let source = try core.withLock { state throws(MacTCPError) -> Source in
            try checkNotReleased(state, operation)
            switch state.phase {
            case .idle: return .none
            case .listening(let pending): return .listening(state.sockName, pending.options)
            case .connecting(let attempts): return .connecting(attempts.first)
            case .connected(let connection):
                return connection.end == nil ? .connected(connection, weClosed: connection.weClosed) : .none
            }
        }
        var status = TCPStatus()
        switch source {
        case .none:
            return status
        case .listening(let endpoint, let options):
            status.localHost = endpoint.host
            status.localAddress = endpoint.address
            status.localPort = endpoint.port
            status.connectionState = TCPConnectionState.listen.rawValue
            Self.fill(&status, options: options)
            return status
        case .connecting(let descriptor):
            _ = descriptor?.withDescriptor { fd in
                let local = Sys.localEndpoint(fd) ?? .none
                status.localHost = local.host
                status.localAddress = local.address
                status.localPort = local.port
            }
            status.connectionState = TCPConnectionState.synSent.rawValue
            return status
        case .connected(let connection, let weClosed):
            let filled: Bool? = connection.descriptor.withDescriptor { fd in
                var info = mt_tcp_info()
                let length = Sys.tcpInfo(fd, &info)
                guard length > 0 else { return false }
                let unread = max(0, Int(Sys.inputQueue(fd)))
                let queued = max(0, Int(Sys.outputQueue(fd)))
                let notSent = max(0, Int(Sys.outputQueueNotSent(fd)))
                let kernel = KernelTCPState(rawValue: info.tcpi_state)
                let finPending =
                    weClosed && notSent == 0
                        && (kernel == .finWait1 || kernel == .closing || kernel == .lastAck) ? 1 : 0
                let inFlight = max(0, queued - notSent - finPending)
                status.localHost = connection.local.host
                status.localAddress = connection.local.address
                status.localPort = connection.local.port
                status.remoteHost = connection.remote.host
                status.remoteAddress = connection.remote.address
                status.remotePort = connection.remote.port
                status.connectionState = TCPConnectionState(kernel: info.tcpi_state).rawValue
                if Int(length) >= Sys.tcpInfoSendWindowEnd {
                    status.sendWindow = Int(info.tcpi_snd_wnd)
                }
                status.rcvWindow = Int(length) >= Sys.tcpInfoReceiveWindowEnd ? Int(info.tcpi_rcv_wnd) : Int(info.tcpi_rcv_space)
                status.amtUnackedData = inFlight
                status.amtUnreadData = unread
                // Relative sequence numbers (initial sequence numbers taken as 0): SND.UNA is
                // the SYN plus the data acknowledged (the kernel counts the SYN in
                // bytes_acked only on the active side).
                let sendUnacked = Int(info.tcpi_bytes_acked) + (connection.passive ? 1 : 0)
                status.sendUnacked = sendUnacked
                status.sendNext = sendUnacked + inFlight + (finPending == 1 && queued > 0 ? 1 : 0)
                status.rcvNext = 1 + Int(info.tcpi_bytes_received)
                status.congestionWindow = Int(info.tcpi_snd_cwnd) * Int(info.tcpi_snd_mss)
                status.srtt = (Int(info.tcpi_rtt) + 999) / 1000
                status.lastRTT = status.srtt
                status.sendMaxSegSize = Int(info.tcpi_snd_mss)
                return true
            }
            guard filled == true else { return TCPStatus() }
            Self.fill(&status, options: connection.options)
            return status
        }
    }

    private static func fill(_ status: inout TCPStatus, options: TCPOpenOptions) {
        status.tosFlags = Int(options.typeOfService.rawValue)
        status.precedence = Int(options.precedence)
        status.ulpTimeoutValue = Int(options.ulpTimeout.components.seconds)
        status.ulpTimeoutAction = options.ulpAction.rawValue
    }
}
