// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import Synchronization

/// A faulty link from this process to a namespace the test makes, through a user-space
/// forwarder (`Peers/lossy_link.py`) between two TUN devices:
///
///     this process (10.215.1.1, mtt0) ═ forwarder: loss, reordering, cut ═ (10.215.2.1, mtt1) far namespace
///
/// The forwarder drops each packet with probability `loss`, holds one back with probability
/// `reorder` (it goes out after the next), and on `cut()` drops everything both ways until
/// `heal()`.
///
/// Both devices send unsegmented packets (`gso_max_segs 1`). With generic segmentation
/// on, the kernel (seen on 6.x) retransmits a lost run of segments as one large buffer and
/// splits it at the device, copying the first segment's urgent pointer into every piece, so
/// the receiver is told of urgent data ending one or more segments past where the sender's
/// urgent send ended: 2 runs of 6 of the 256 MiB test showed a mark exactly one MSS (8,936
/// bytes) past an urgent end, 0 of 8 with `gso_max_segs 1` on this side (and once more, from the
/// far side's sender, while only this side had it). The library's own calls are exact
/// (one MSG_OOB byte, at the end of each urgent send); the fault is the sending kernel's.
///
/// As in ``NetworkLab``, the library runs in this process's own namespace and only
/// plain sockets are made in the far one; one link exists at a time.
final class LossyLink: Sendable {
    let namespace: String
    static let device = "mtt0"
    static let nearAddress: UInt32 = 0x0AD7_0101
    static let farAddress: UInt32 = 0x0AD7_0201
    private static let gate = DispatchSemaphore(value: 1)
    private let forwarder: ChildProcess
    private let isUp = Mutex(true)

    /// Whether the link can be made here (root, iproute2, python3, /dev/net/tun).
    static var isAvailable: Bool {
        NetworkLab.isAvailable && FileManager.default.fileExists(atPath: "/dev/net/tun")
    }

    /// Makes the namespace and the devices and starts the forwarder.
    init(loss: Double = 0, reorder: Double = 0, seed: UInt64 = 1, mtu: Int = 9000) throws {
        guard Self.gate.wait(timeout: .now() + 300) == .success else {
            throw PeerError(description: "another lossy link stayed up for 300 s")
        }
        namespace = "mt\(getpid() % 100_000)x\(Int.random(in: 0..<10_000))l"
        let device = Self.device
        do {
            try shell(
                """
                ip link del \(device) 2>/dev/null || true
                ip netns add \(namespace)
                ip tuntap add dev \(device) mode tun
                ip -n \(namespace) tuntap add dev mtt1 mode tun
                ip addr add 10.215.1.1 peer 10.215.2.1 dev \(device)
                ip -n \(namespace) addr add 10.215.2.1 peer 10.215.1.1 dev mtt1
                ip link set \(device) mtu \(mtu) gso_max_segs 1 up
                ip -n \(namespace) link set mtt1 mtu \(mtu) gso_max_segs 1 up
                ip -n \(namespace) link set lo up
                """)
            let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("Peers/lossy_link.py").path
            forwarder = try ChildProcess("python3", [script, device, namespace, "mtt1", String(loss), String(reorder), String(seed)])
        } catch {
            _ = try? shell("ip link del \(device) 2>/dev/null; ip netns del \(namespace) 2>/dev/null; true")
            Self.gate.signal()
            throw error
        }
        do {
            try waitUntil(timeout: 10, "the forwarder") {
                guard forwarder.isRunning else { throw PeerError(description: "the forwarder ended: \(forwarder.errors)") }
                return forwarder.output.hasPrefix("ready")
            }
        } catch {
            tearDown()
            throw error
        }
    }

    deinit {
        tearDown()
    }

    /// Drops every packet, both ways, until ``heal()``.
    func cut() { forwarder.send(SIGUSR1) }

    /// Forwards again.
    func heal() { forwarder.send(SIGUSR2) }

    /// Stops the forwarder and deletes the namespace and devices (once); gives back the
    /// forwarder's counts (forwarded, dropped, reordered, cutDropped).
    @discardableResult
    func tearDown() -> [String: Int] {
        guard
            isUp.withLock({ was in
                defer { was = false }
                return was
            })
        else { return [:] }
        forwarder.send(SIGTERM)
        _ = try? forwarder.wait(timeout: 10)
        let last = forwarder.output.split(separator: "\n").last.map(String.init) ?? ""
        let object = try? JSONSerialization.jsonObject(with: Data(last.utf8)) as? [String: Any]
        let counts = (object ?? [:]).compactMapValues { ($0 as? NSNumber)?.intValue }
        if counts.isEmpty { print("the forwarder's output: \(forwarder.output) \(forwarder.errors)") }
        _ = try? shell("ip link del \(Self.device) 2>/dev/null; ip netns del \(namespace) 2>/dev/null; true")
        Self.gate.signal()
        return counts
    }

    /// Runs `body` on a thread in the far namespace (plain sockets only).
    func within<T: Sendable>(timeout: Double = 20, _ body: @escaping @Sendable () throws -> T) throws -> T {
        try inNamespace(namespace, timeout: timeout, body)
    }
}
