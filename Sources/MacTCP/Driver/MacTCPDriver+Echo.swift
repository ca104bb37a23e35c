// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

extension MacTCPDriver {
    /// The 56 bytes an echo carries when no data is given (as ping sends): 0x10, 0x11, ….
    public static let defaultEchoData: [UInt8] = (0..<56).map { UInt8(0x10 + $0) }

    /// Sends one ICMP echo request and blocks until its reply comes.
    ///
    /// The echo has a socket of its own: Linux's ICMP datagram socket where
    /// `net.ipv4.ping_group_range` (per network namespace; Debian's default `1 0` admits
    /// nobody) admits the process's group, otherwise a raw socket where the process has
    /// `CAP_NET_RAW`. A reply counts only if its identifier, sequence, source and data are this
    /// echo's, so concurrent echoes never take each other's replies.
    ///
    /// - Parameters:
    ///   - address: The host to ask, IPv4 or IPv6 (a link-local address with its scope).
    ///   - data: The data to send and have echoed: 0 to 65,507 bytes to IPv4, 0 to 65,527 to
    ///     IPv6; ``defaultEchoData`` when left out.
    ///   - timeout: How long to wait for the reply, more than zero.
    ///   - timeToLive: The request's time to live (hop limit for IPv6), 1…255; 0 keeps the
    ///     system's default.
    /// - Returns: The reply: when the request left and the reply came, the echoed data and
    ///   the reply's time to live.
    /// - Throws: ``MacTCPError/icmpEchoTimeoutErr`` when no reply comes in time. When an ICMP
    ///   error answers instead, the error's ``MacTCPError/icmp`` keeps its type and code:
    ///   network unreachable or no route is ``MacTCPError/ipRouteErr``, host unreachable
    ///   ``MacTCPError/ipDestDeadErr``, fragmentation needed ``MacTCPError/ipDontFragErr``, and
    ///   time exceeded, port or protocol unreachable, administratively prohibited and
    ///   parameter problem ``MacTCPError/ipDestDeadErr`` too. ``MacTCPError/ipBadAddr`` for
    ///   `0.0.0.0`, `::` or a link-local address without its scope;
    ///   ``MacTCPError/invalidLength`` for too much data, a timeout of zero or less, or a time
    ///   to live above 255; ``MacTCPError/ipNoCnfgErr`` naming the sysctl and the group when
    ///   the process may open neither kind of ICMP socket.
    ///
    /// The corresponding MacTCP call is `IPCtlEchoICMP`.
    public static func echoICMP(
        to address: IPAddress, data: [UInt8] = defaultEchoData, timeout: Duration, timeToLive: Int = 0
    ) throws -> ICMPEchoReply {
        let echo = try ICMPEcho.start(to: address, data: data, timeout: timeout, timeToLive: timeToLive)
        return try result(echo.wait())
    }

    /// Sends one ICMP echo request and suspends until its reply comes; the async form of
    /// ``echoICMP(to:data:timeout:timeToLive:)-20kyk``.
    ///
    /// Cancelling the task ends the echo: its socket is closed and the call throws
    /// `CancellationError`.
    ///
    /// - Parameters:
    ///   - address: The host to ask, IPv4 or IPv6.
    ///   - data: The data to send and have echoed.
    ///   - timeout: How long to wait for the reply, more than zero.
    ///   - timeToLive: The request's time to live (hop limit); 0 keeps the system's default.
    /// - Returns: The reply.
    /// - Throws: As the blocking form, and `CancellationError`.
    ///
    /// The corresponding MacTCP call is `IPCtlEchoICMP`.
    public static func echoICMP(
        to address: IPAddress, data: [UInt8] = defaultEchoData, timeout: Duration, timeToLive: Int = 0
    ) async throws -> ICMPEchoReply {
        let echo = try ICMPEcho.start(to: address, data: data, timeout: timeout, timeToLive: timeToLive)
        return try result(await echo.wait())
    }

    private static func result(_ outcome: ICMPEcho.Outcome) throws -> ICMPEchoReply {
        switch outcome {
        case .reply(let reply): return reply
        case .failed(let error): throw error
        case .cancelled: throw CancellationError()
        }
    }
}
