// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// The socket options every stream socket carries, and those one connection asks for.
enum SocketOptions {
    static let solSocket = Int32(SOL_SOCKET)
    static let reuseAddress = Int32(SO_REUSEADDR)
    static let reusePort = Int32(SO_REUSEPORT)

    /// `SO_OOBINLINE` (without it Linux loses urgent bytes), `TCP_NODELAY` (push is the
    /// default; non-pushed sends use `MSG_MORE`), `IP_RECVERR` (ICMP errors are reported;
    /// on an IPv6 socket `IPV6_RECVERR` too: a dual-stack socket's IPv4 traffic needs the
    /// first, its IPv6 traffic the second).
    static func applyCommon(_ fd: Int32, ipv6: Bool) {
        _ = Sys.setOption(fd, Int32(SOL_SOCKET), Int32(SO_OOBINLINE), 1)
        _ = Sys.setOption(fd, Int32(IPPROTO_TCP), Int32(TCP_NODELAY), 1)
        _ = Sys.setOption(fd, Int32(IPPROTO_IP), Int32(IP_RECVERR), 1)
        if ipv6 { _ = Sys.setOption(fd, Int32(IPPROTO_IPV6), Int32(IPV6_RECVERR), 1) }
    }

    /// What a library listener sets so that the connections it accepts inherit it: the
    /// common options and the default ULP timeout (abort after 2 minutes); on an IPv6
    /// listener, `IPV6_V6ONLY` off, so that IPv4 clients reach it too (dual stack).
    static func applyListener(_ fd: Int32, ipv6: Bool) {
        if ipv6 { _ = Sys.setOption(fd, Int32(IPPROTO_IPV6), Int32(IPV6_V6ONLY), 0) }
        applyCommon(fd, ipv6: ipv6)
        setUserTimeout(fd, options: TCPOpenOptions(), connecting: false)
    }

    /// The settings of an accepted connection that differ from what it inherited from the
    /// listener (``applyListener(_:)``).
    static func applyAccepted(_ fd: Int32, options: TCPOpenOptions, receiveBufferSize: Int?) {
        let defaults = TCPOpenOptions()
        if options.ulpTimeout != defaults.ulpTimeout || options.ulpAction != defaults.ulpAction {
            setUserTimeout(fd, options: options, connecting: false)
        }
        applyConnection(fd, options: options, receiveBufferSize: receiveBufferSize, connecting: nil)
    }

    /// The receive buffer and the IP header settings of one connection, and the kernel's
    /// user timeout when the ULP action is abort (`connecting`: also for the report action,
    /// to bound the handshake; nil: leave the user timeout alone).
    static func applyConnection(_ fd: Int32, options: TCPOpenOptions, receiveBufferSize: Int?, connecting: Bool?) {
        if let size = receiveBufferSize {
            // The kernel doubles the value for its bookkeeping; ask for half so that the
            // window offered matches the size MacTCP users expect.
            _ = Sys.setOption(fd, Int32(SOL_SOCKET), Int32(SO_RCVBUF), Int32(clamping: max(size / 2, 2048)))
        }
        if let connecting { setUserTimeout(fd, options: options, connecting: connecting) }
        let tos = options.typeOfService.ipTOS(precedence: options.precedence)
        // An IPv6 socket (asked only when a header setting is wanted) takes both families'
        // options: the IPv6 ones for its IPv6 traffic, the IPv4 ones for a dual-stack
        // socket's IPv4 traffic.
        let ipv6 = (tos != 0 || options.timeToLive != 0 || options.dontFragment) && Sys.isIPv6Socket(fd)
        if tos != 0 {
            _ = Sys.setOption(fd, Int32(IPPROTO_IP), Int32(IP_TOS), tos)
            if ipv6 { _ = Sys.setOption(fd, Int32(IPPROTO_IPV6), Int32(IPV6_TCLASS), tos) }
        }
        if options.timeToLive != 0 {
            _ = Sys.setOption(fd, Int32(IPPROTO_IP), Int32(IP_TTL), Int32(options.timeToLive))
            if ipv6 { _ = Sys.setOption(fd, Int32(IPPROTO_IPV6), Int32(IPV6_UNICAST_HOPS), Int32(options.timeToLive)) }
        }
        if options.dontFragment {
            _ = Sys.setOption(fd, Int32(IPPROTO_IP), Int32(IP_MTU_DISCOVER), Int32(IP_PMTUDISC_DO))
            if ipv6 { _ = Sys.setOption(fd, Int32(IPPROTO_IPV6), Int32(IPV6_MTU_DISCOVER), Int32(IPV6_PMTUDISC_DO)) }
        }
        if let keepalive = options.keepalive {
            _ = Sys.setOption(fd, Int32(IPPROTO_TCP), Int32(TCP_KEEPIDLE), Int32(TCPKeepalive.seconds(keepalive.idle)))
            _ = Sys.setOption(fd, Int32(IPPROTO_TCP), Int32(TCP_KEEPINTVL), Int32(TCPKeepalive.seconds(keepalive.interval)))
            _ = Sys.setOption(fd, Int32(IPPROTO_TCP), Int32(TCP_KEEPCNT), Int32(keepalive.count))
            _ = Sys.setOption(fd, Int32(SOL_SOCKET), Int32(SO_KEEPALIVE), 1)
        }
    }

    /// `TCP_USER_TIMEOUT`: the kernel aborts the connection when sent data stays
    /// unacknowledged this long (the ULP abort action). The report action is done by the
    /// library's monitor instead, so the kernel's own limit is switched off then.
    static func setUserTimeout(_ fd: Int32, options: TCPOpenOptions, connecting: Bool) {
        let milliseconds = options.ulpAction == .abort || connecting ? options.ulpMilliseconds : 0
        _ = Sys.setOption(fd, Int32(IPPROTO_TCP), Int32(TCP_USER_TIMEOUT), milliseconds)
    }
}
