import Foundation
import Glibc

/// Network namespaces made by a test, with a router that answers with ICMP errors:
///
///     client (10.213.1.1) ── router (10.213.1.254 | 10.213.2.254) ── server (10.213.2.1)
///
/// The router sends host unreachable for 10.213.9.0/24, administratively prohibited for
/// 10.213.8.0/24 and net unreachable for everything outside 10.213.0.0/16; it silently drops
/// what goes to 10.213.7.0/24. Nothing leaves
/// the namespaces; they are deleted when the lab is torn down.
final class NetworkLab: Sendable {
    let client: String
    let router: String
    let server: String
    static let clientAddress: UInt32 = 0x0AD5_0101
    static let serverAddress: UInt32 = 0x0AD5_0201

    /// Whether namespaces can be made here (root with iproute2); tests skip otherwise.
    static var isAvailable: Bool {
        getuid() == 0 && FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip")
            || FileManager.default.isExecutableFile(atPath: "/sbin/ip") && getuid() == 0
    }

    init() throws {
        let tag = "mt\(getpid() % 100_000)x\(Int.random(in: 0..<10_000))"
        client = "\(tag)c"
        router = "\(tag)r"
        server = "\(tag)s"
        do {
            try shell("""
                ip netns add \(client); ip netns add \(router); ip netns add \(server)
                ip -n \(router) link add rc type veth peer name c0 netns \(client)
                ip -n \(router) link add rs type veth peer name s0 netns \(server)
                ip -n \(client) addr add 10.213.1.1/24 dev c0
                ip -n \(server) addr add 10.213.2.1/24 dev s0
                ip -n \(router) addr add 10.213.1.254/24 dev rc
                ip -n \(router) addr add 10.213.2.254/24 dev rs
                for ns in \(client) \(router) \(server); do ip -n $ns link set lo up; done
                ip -n \(client) link set c0 up; ip -n \(server) link set s0 up
                ip -n \(router) link set rc up; ip -n \(router) link set rs up
                ip -n \(client) route add default via 10.213.1.254
                ip -n \(server) route add default via 10.213.2.254
                ip netns exec \(router) sysctl -qw net.ipv4.ip_forward=1
                ip -n \(router) route add unreachable 10.213.9.0/24
                ip -n \(router) route add prohibit 10.213.8.0/24
                ip -n \(router) route add blackhole 10.213.7.0/24
                ip -n \(router) route add 10.213.0.0/16 via 10.213.1.1
                """)
        } catch {
            tearDown()
            throw error
        }
    }

    deinit {
        tearDown()
    }

    func tearDown() {
        _ = try? shell("ip netns del \(client) 2>/dev/null; ip netns del \(router) 2>/dev/null; ip netns del \(server) 2>/dev/null; true")
    }

    /// Runs a command in the router namespace.
    func inRouter(_ command: String) throws {
        try shell("ip netns exec \(router) \(command)")
    }

    /// setns(2), a GNU extension that Glibc's module does not export.
    private static let setns: @convention(c) (Int32, Int32) -> Int32 = {
        let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "setns")!
        return unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    }()

    /// Runs `body` on a new thread that has entered namespace `name`: sockets it creates
    /// live there. (The test's own threads never change namespace.)
    func within<T: Sendable>(_ name: String, timeout: Double = 20, _ body: @escaping @Sendable () throws -> T) throws -> T {
        let task = Background { () throws -> T in
            let fd = open("/run/netns/\(name)", O_RDONLY)
            guard fd >= 0, Self.setns(fd, 0x4000_0000 /* CLONE_NEWNET */) == 0 else {
                throw PeerError(description: "cannot enter namespace \(name): \(String(cString: strerror(errno)))")
            }
            Glibc.close(fd)
            return try body()
        }
        return try task.value(timeout: timeout).get()
    }
}
