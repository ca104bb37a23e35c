// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// The driver subsystem: MacTCP's driver-wide calls (the primary interface, its MTU, the
// kernel's TCP parameters and counters), read from `/proc` (`KernelFiles`) and the system layer.
// It holds no state of its own.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// Driver-wide information: the machine's primary interface and the kernel's TCP
/// parameters and counters.
///
/// The "primary" interface is the one of the IPv4 default route (`/proc/net/route`); without
/// a default route, the first interface that is up and not a loopback; failing that,
/// loopback. No packet is sent to find it.
public enum MacTCPDriver {
    /// The primary interface: name, address, netmask.
    static func primaryInterface() -> KernelFiles.InterfaceAddress? {
        let addresses = KernelFiles.interfaceAddresses()
        if let name = KernelFiles.defaultRouteInterface(), let match = addresses.first(where: { $0.name == name }) {
            return match
        }
        return addresses.first { $0.isUp && !$0.isLoopback } ?? addresses.first { $0.isLoopback }
    }

    /// The largest UDP payload on the local network: the primary interface's MTU minus the
    /// IP and UDP headers (28 bytes), at most 65,507. This is what MacTCP's `MTU()` gave
    /// (`UDPMaxMTUSize` for the machine's own address); ``interfaceMTU()`` gives the link's MTU.
    ///
    /// - Returns: The payload size in bytes, or 0 when no interface is known.
    ///
    /// The corresponding Python `mactcp` call is `MTU()`.
    public static func mtu() -> Int {
        let link = interfaceMTU()
        return link > 28 ? min(link - 28, UDPStream.maximumDatagramSize) : 0
    }

    /// The MTU of the primary interface (`/sys/class/net/NAME/mtu`), or 0 when unknown.
    public static func interfaceMTU() -> Int {
        primaryInterface().flatMap { KernelFiles.mtu(of: $0.name) } ?? 0
    }

    /// The primary interface's IPv4 address (host byte order), or 0 when there is none.
    ///
    /// The corresponding Python `mactcp` call is `IPAddr()` (MacTCP's `ipctlGetAddr`).
    public static func ipAddr() -> UInt32 {
        primaryInterface()?.address ?? 0
    }

    /// The primary interface's IPv4 netmask (host byte order), or 0 when there is none.
    ///
    /// The corresponding Python `mactcp` call is `NetMask()` (MacTCP's `ipctlGetAddr`).
    public static func netMask() -> UInt32 {
        primaryInterface()?.netmask ?? 0
    }

    /// The primary interface's name (such as `eth0`), or nil.
    public static func interfaceName() -> String? {
        primaryInterface()?.name
    }

    /// MacTCP's TCPParam and TCPStats, from the kernel's parameters and counters
    /// (`/proc/net/snmp`, `/proc/net/netstat`, `/proc/sys/net/ipv4`). Each field's
    /// documentation names its source.
    ///
    /// - Returns: A snapshot of the parameters and counters.
    /// - Throws: ``MacTCPError/ipNoCnfgErr`` when `/proc/net/snmp` cannot be read.
    ///
    /// The corresponding MacTCP call is `TCPGlobalInfo`.
    public static func globalInfo() throws -> TCPGlobalInfo {
        let snmp = KernelFiles.counters("/proc/net/snmp")
        guard let tcp = snmp["Tcp"] else {
            throw MacTCPError.ipNoCnfgErr.with(operation: "globalInfo", detail: "cannot read the kernel's TCP counters in /proc/net/snmp")
        }
        let netstat = KernelFiles.counters("/proc/net/netstat")
        let tcpExt = netstat["TcpExt"] ?? [:]
        let ipExt = netstat["IpExt"] ?? [:]
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let rmem = KernelFiles.integers("/proc/sys/net/ipv4/tcp_rmem")
        let mtu = interfaceMTU()
        let parameters = TCPParam(
            tcpRtoA: tcp["RtoAlgorithm"] ?? 0,
            tcpRtoMin: tcp["RtoMin"] ?? 0,
            tcpRtoMax: tcp["RtoMax"] ?? 0,
            tcpMaxSegSize: mtu > 40 ? mtu - 40 : 0,
            tcpMaxConn: Int(clamping: limit.rlim_cur),
            tcpMaxWindow: rmem.count == 3 ? rmem[2] : 0
        )
        let active = tcp["ActiveOpens"] ?? 0
        let passive = tcp["PassiveOpens"] ?? 0
        let failed = tcp["AttemptFails"] ?? 0
        let resets = tcp["EstabResets"] ?? 0
        let current = tcp["CurrEstab"] ?? 0
        let aborted = resets + (tcpExt["TCPAbortOnTimeout"] ?? 0)
        let statistics = TCPStats(
            tcpConnAttempts: active,
            tcpConnOpened: max(0, active - failed),
            tcpConnAccepted: passive,
            tcpConnClosed: max(0, active - failed + passive - current - aborted),
            tcpConnAborted: aborted,
            tcpOctetsIn: ipExt["InOctets"] ?? 0,
            tcpOctetsOut: ipExt["OutOctets"] ?? 0,
            tcpOctetsInDup: nil,
            tcpOctetsRetrans: nil,
            tcpInputPkts: tcp["InSegs"] ?? 0,
            tcpOutputPkts: tcp["OutSegs"] ?? 0,
            tcpDupPkts: (tcpExt["TCPDSACKOldSent"] ?? 0) + (tcpExt["TCPDSACKOfoSent"] ?? 0),
            tcpRetransPkts: tcp["RetransSegs"] ?? 0
        )
        return TCPGlobalInfo(parameters: parameters, statistics: statistics)
    }
}
