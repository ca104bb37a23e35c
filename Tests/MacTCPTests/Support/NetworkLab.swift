// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import MacTCP
import Synchronization

/// A router and a server in network namespaces made by a test, reached from the test's own
/// namespace, where the library runs:
///
///     this process (10.213.1.1, mtlab0) ── router (10.213.1.254 | 10.213.2.254) ── server (10.213.2.1)
///
/// This process routes 10.213.0.0/16 and 10.214.0.0/16 to the router, which sends host
/// unreachable for 10.213.9.0/24, administratively prohibited for 10.213.8.0/24 and net
/// unreachable for everything outside 10.213.0.0/16; it silently drops what goes to
/// 10.213.7.0/24. Both links have IPv6 too: this process fd00:213:1::1, the router
/// fd00:213:1::fe and fd00:213:2::fe, the server fd00:213:2::1; no other host answers on the
/// first link (fd00:213:1::99 is never found). This process routes fd00:213:2::/64,
/// fd00:213:8::/64, fd00:213:9::/64 and fd00:214::/64 to the router (each route is checked to
/// go to the lab before a test runs), which sends no route (ICMPv6 unreachable, code 0) for
/// fd00:213:9::/64 and for everything outside fd00:213::/48, administratively prohibited
/// (code 1) for fd00:213:8::/64, and packet too big for what does not fit the server's link,
/// whose MTU is 1,280 (IPv6's least) on the router's side. Nothing leaves these namespaces
/// and the veth pair; they are deleted when the lab is torn down.
///
/// The library is never run on a thread that has entered a namespace: Dispatch starts its
/// worker threads from the thread that queues work, and a worker started there would stay in
/// that namespace and later run other tests' code in it. Only plain sockets (`Peer`) are made
/// in the server's namespace, through `within`. One lab exists at a time (the interface and
/// routes of this namespace are shared).
final class NetworkLab: Sendable {
    let router: String
    let server: String
    /// This process's end of the link to the router.
    static let interface = "mtlab0"
    static let clientAddress: UInt32 = 0x0AD5_0101
    static let serverAddress: UInt32 = 0x0AD5_0201
    static let routerAddress6 = IPAddress("fd00:213:1::fe")!
    static let serverAddress6 = IPAddress("fd00:213:2::1")!
    private static let gate = DispatchSemaphore(value: 1)
    private let isUp = Mutex(true)

    /// Whether namespaces can be made here (root with iproute2); tests skip otherwise.
    static var isAvailable: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
            || FileManager.default.isExecutableFile(atPath: "/sbin/ip") && getuid() == 0
    }

    init() throws {
        guard Self.gate.wait(timeout: .now() + 120) == .success else {
            throw PeerError(description: "another network lab stayed up for 120 s")
        }
        let tag = "mt\(getpid() % 100_000)x\(Int.random(in: 0..<10_000))"
        router = "\(tag)r"
        server = "\(tag)s"
        let interface = Self.interface
        do {
            try shell(
                """
                ip link del \(interface) 2>/dev/null || true
                ip netns add \(router); ip netns add \(server)
                ip link add \(interface) type veth peer name rc netns \(router)
                ip -n \(router) link add rs type veth peer name s0 netns \(server)
                ip addr add 10.213.1.1/24 dev \(interface)
                ip -n \(server) addr add 10.213.2.1/24 dev s0
                ip -n \(router) addr add 10.213.1.254/24 dev rc
                ip -n \(router) addr add 10.213.2.254/24 dev rs
                for ns in \(router) \(server); do ip -n $ns link set lo up; done
                ip link set \(interface) up; ip -n \(server) link set s0 up
                ip -n \(router) link set rc up; ip -n \(router) link set rs up
                ip route add 10.213.0.0/16 via 10.213.1.254 dev \(interface)
                ip route add 10.214.0.0/16 via 10.213.1.254 dev \(interface)
                ip -n \(server) route add default via 10.213.2.254
                ip netns exec \(router) sysctl -qw net.ipv4.ip_forward=1
                ip -n \(router) route add unreachable 10.213.9.0/24
                ip -n \(router) route add prohibit 10.213.8.0/24
                ip -n \(router) route add blackhole 10.213.7.0/24
                ip -n \(router) route add 10.213.0.0/16 via 10.213.1.1
                ip addr add fd00:213:1::1/64 dev \(interface) nodad
                ip -n \(router) addr add fd00:213:1::fe/64 dev rc nodad
                ip -n \(router) addr add fd00:213:2::fe/64 dev rs nodad
                ip -n \(server) addr add fd00:213:2::1/64 dev s0 nodad
                ip -n \(router) link set rs mtu 1280
                ip netns exec \(router) sysctl -qw net.ipv6.conf.all.forwarding=1
                ip netns exec \(router) sysctl -qw net.ipv6.icmp.ratelimit=0
                ip -n \(router) route add unreachable fd00:213:9::/64
                ip -n \(router) route add prohibit fd00:213:8::/64
                ip -n \(server) route add default via fd00:213:2::fe
                for net in fd00:213:2 fd00:213:8 fd00:213:9 fd00:214:0; do
                    ip route add $net::/64 via fd00:213:1::fe dev \(interface)
                done
                # Nothing of the lab's may leave by another interface: each destination's route
                # is checked (a /48 here is passed over for the default route on some kernels).
                for address in 10.213.2.1 10.213.9.5 10.214.0.5 fd00:213:2::1 fd00:213:9::5 fd00:214::5; do
                    ip route get $address | grep -q "dev \(interface)" || { echo "$address is not routed to the lab"; exit 1; }
                done
                """)
        } catch {
            tearDown()
            throw error
        }
    }

    deinit {
        tearDown()
    }

    /// Deletes the namespaces and the link (once) and lets the next lab be made.
    func tearDown() {
        guard
            isUp.withLock({ was in
                defer { was = false }
                return was
            })
        else { return }
        _ = try? shell(
            "ip link del \(Self.interface) 2>/dev/null; ip netns del \(router) 2>/dev/null; ip netns del \(server) 2>/dev/null; true")
        Self.gate.signal()
    }

    /// Runs a command in the router namespace.
    func inRouter(_ command: String) throws {
        try shell("ip netns exec \(router) \(command)")
    }

    /// Runs `body` on a new thread that has entered the server's namespace (see
    /// ``inNamespace(_:timeout:_:)``).
    func within<T: Sendable>(_ name: String, timeout: Double = 20, _ body: @escaping @Sendable () throws -> T) throws -> T {
        try inNamespace(name, timeout: timeout, body)
    }
}

/// setns(2), a GNU extension that Glibc's module does not export.
private let setns: @convention(c) (Int32, Int32) -> Int32 = {
    let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns")!
    return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
}()

/// Runs `body` on a new thread that has entered network namespace `name`: sockets it creates
/// live there. (The test's own threads never change namespace.) `body` makes plain sockets
/// only: nothing of the library, nothing that queues work on Dispatch.
func inNamespace<T: Sendable>(_ name: String, timeout: Double = 20, _ body: @escaping @Sendable () throws -> T) throws -> T {
    let task = Background { () throws -> T in
        let fd = open("/run/netns/\(name)", O_RDONLY | O_CLOEXEC)
        let cloneNewNet: Int32 = 0x4000_0000  // CLONE_NEWNET
        guard fd >= 0, setns(fd, cloneNewNet) == 0 else {
            throw PeerError(description: "cannot enter namespace \(name): \(String(cString: strerror(errno)))")
        }
        Glibc.close(fd)
        return try body()
    }
    return try task.value(timeout: timeout).get()
}
