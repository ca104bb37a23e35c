// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import Glibc
import Synchronization
import Testing

@testable import MacTCP

/// TCP streams over IPv6 against plain IPv6 sockets on `::1`: active opens by address and by
/// name, dual-stack passive opens, the address filter, urgent data and acknowledgements,
/// status and the endpoints as `IPAddress`; bad addresses refused clearly. The async tests run
/// on `TestExecutor` (the blocking suites hold the cooperative pool).
@Suite("TCP over IPv6", .timeLimit(.minutes(1)))
struct IPv6Tests {
    @Test("an active open to ::1: data both ways, the endpoints as IPAddress, the UInt32 fields 0")
    func activeOpenToLoopback() throws {
        let listener = try Peer.listener6()
        let stream = try TCPStream()
        defer { stream.release() }
        try stream.activeOpen(address: IPAddress("::1")!, remotePort: listener.localPort, timeout: .seconds(5))
        let peer = try listener.accept()
        try stream.send("over six")
        #expect(try peer.receive() == Array("over six".utf8))
        try peer.send("back")
        #expect(try stream.receive(timeout: .seconds(5)).data == Array("back".utf8))
        #expect(stream.remoteAddress == .v6(.loopback) && stream.localAddress == .v6(.loopback))
        let status = try stream.status()
        #expect(status.state == .established)
        #expect(status.remoteAddress == .v6(.loopback) && status.remotePort == listener.localPort && status.remoteHost == 0)
        #expect(status.localAddress == .v6(.loopback) && status.localHost == 0 && status.localPort == peer.remotePort)
        #expect(stream.getSockName() == (0, peer.remotePort) || stream.getSockName().port == peer.remotePort)
        #expect(status.description.contains("[::1]:\(listener.localPort)"))
    }

    @Test("a passive open takes an IPv6 client and an IPv4 one on the same port; the IPv4 client stays a UInt32 host")
    func passiveOpenBothFamilies() throws {
        let six = try TCPStream()
        let four = try TCPStream()
        defer {
            six.release()
            four.release()
        }
        try six.passiveOpen(timeout: .seconds(10))
        let port = six.getSockName().port
        try four.passiveOpen(port: port, timeout: .seconds(10))
        let client6 = try Peer.connect6(port: port)
        try six.wait()
        let client4 = try Peer.connect(port: port)
        try four.wait()
        #expect(six.remoteAddress == .v6(.loopback) && six.remoteAddress.ipv4 == nil)
        #expect(try six.status().remoteHost == 0 && six.status().remotePort == client6.localPort)
        #expect(four.remoteAddress == .v4(IPv4.loopback))
        #expect(try four.status().remoteHost == IPv4.loopback && four.status().localHost == IPv4.loopback)
        try client6.send("6")
        try client4.send("4")
        #expect(try six.receive(timeout: .seconds(5)).data == Array("6".utf8))
        #expect(try four.receive(timeout: .seconds(5)).data == Array("4".utf8))
    }

    @Test("a remote filter as IPAddress: an IPv4 client is reset and the stream goes on waiting for ::1")
    func filterByAddress() throws {
        let stream = try TCPStream()
        defer { stream.release() }
        try stream.passiveOpen(remoteAddress: IPAddress("::1")!, timeout: .seconds(10))
        let port = stream.getSockName().port
        #expect(try Peer.isReset(connectingTo: port))
        #expect(!stream.isDone)
        let client = try Peer.connect6(port: port)
        try stream.wait()
        #expect(try stream.remoteAddress == .v6(.loopback) && stream.status().remotePort == client.localPort)
    }

    @Test("urgent data and the mark, and a waitForAck send, over IPv6 (the socket's error queue speaks IPv6)")
    func urgentAndAcknowledgement() throws {
        let listener = try Peer.listener6()
        let stream = try TCPStream()
        defer { stream.release() }
        try stream.activeOpen(address: .v6(.loopback), remotePort: listener.localPort, timeout: .seconds(5))
        let peer = try listener.accept()
        try peer.send("ab")
        try peer.sendUrgent(Array("U".utf8))
        var received: [TCPReceived] = []
        while received.map(\.data.count).reduce(0, +) < 3 {
            received.append(try stream.receive(timeout: .seconds(5)))
        }
        #expect(received.last?.urgent == true && received.last?.mark == true, "\(received)")
        #expect(received.flatMap(\.data) == Array("abU".utf8))
        let options = TCPOpenOptions(ulpTimeout: .seconds(3))
        let other = try TCPStream()
        defer { other.release() }
        try other.activeOpen(address: .v6(.loopback), remotePort: listener.localPort, timeout: .seconds(5), options: options)
        let reader = try listener.accept()
        let start = ContinuousClock.now
        try other.send([UInt8](repeating: 7, count: 100_000), waitForAck: true)
        #expect(ContinuousClock.now - start < .seconds(3), "acknowledged before the ULP timeout")
        var total = 0
        while total < 100_000 { total += try reader.receive().count }
        #expect(total == 100_000)
    }

    @Test("bad addresses: ::, a link-local address without its interface, a malformed name, port 0")
    func badAddresses() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let stream = try TCPStream()
            defer { stream.release() }
            expectMacTCPError(.ipBadAddr) { try stream.activeOpen(address: .v6(.unspecified), remotePort: 80) }
            do {
                try blocking { try stream.activeOpen(address: IPAddress("fe80::1")!, remotePort: 80) }
                Issue.record("a link-local address without a scope was taken")
            } catch let error as MacTCPError {
                #expect(error == .ipBadAddr && error.description.contains("link-local"), "\(error)")
            }
            expectMacTCPError(.nameSyntaxErr) { try stream.activeOpen(host: "bad..name", remotePort: 80) }
            expectMacTCPError(.ipBadAddr) { try stream.activeOpen(host: "::1", remotePort: 0) }
            expectMacTCPError(.ipBadAddr) { try stream.activeOpen(host: "localhost", remotePort: 0) }
            await #expect(throws: MacTCPError.nameSyntaxErr) { try await stream.activeOpen(host: "bad..name", remotePort: 80) }
            #expect(try stream.status().state == .closed)
        }
    }

    @Test("localhost with a server on 127.0.0.1 only: ::1 is refused and IPv4 is tried at once, not 250 ms later")
    func localhostRefusedOnIPv6() throws {
        let listener = try Peer.listener()
        let stream = try TCPStream()
        defer { stream.release() }
        let start = ContinuousClock.now
        try stream.activeOpen(host: "localhost", remotePort: listener.localPort, timeout: .seconds(5))
        let elapsed = ContinuousClock.now - start
        _ = try listener.accept()
        #expect(stream.remoteAddress == .v4(IPv4.loopback))
        #expect(elapsed < .milliseconds(200), "\(elapsed)")
    }

    @Test("a name from an /etc/hosts of the test's own with an AAAA and an A: IPv6 first; with ::1 refused, IPv4 at once")
    func openByHostsFileName() throws {
        let base = NSTemporaryDirectory() + "/mactcp-hosts6-\(getpid())"
        try FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: base) }
        let files = DNRSystemFiles(resolvConf: base + "/resolv.conf", hosts: base + "/hosts", nsswitch: base + "/nsswitch.conf")
        try "options attempts:1 timeout:1\n".write(toFile: files.resolvConf, atomically: true, encoding: .utf8)
        try "127.0.0.1 both.hosts.test\n::1 both.hosts.test six.hosts.test\n".write(toFile: files.hosts, atomically: true, encoding: .utf8)
        try "hosts: files\n".write(toFile: files.nsswitch, atomically: true, encoding: .utf8)
        let resolver = DNR(files: files, environment: [:], configuration: nil)
        let six = try Peer.listener6()
        let stream = try TCPStream()
        defer { stream.release() }
        try stream.activeOpen(host: "both.hosts.test", remotePort: six.localPort, timeout: .seconds(5), resolver: resolver)
        _ = try six.accept()
        #expect(stream.remoteAddress == .v6(.loopback))
        try stream.abort()
        let four = try Peer.listener()
        let start = ContinuousClock.now
        try stream.activeOpen(host: "both.hosts.test", remotePort: four.localPort, timeout: .seconds(5), resolver: resolver)
        _ = try four.accept()
        #expect(stream.remoteAddress == .v4(IPv4.loopback))
        #expect(ContinuousClock.now - start < .milliseconds(200))
        try stream.abort()
        // A name with only an AAAA, and nothing listening there: openFailed names [::1]:port.
        let refused = try Peer.listener6()
        let port = refused.localPort
        refused.close()
        do {
            try stream.activeOpen(host: "six.hosts.test", remotePort: port, timeout: .seconds(5), resolver: resolver)
            Issue.record("an open to a closed port succeeded")
        } catch let error as MacTCPError {
            #expect(error == .openFailed && (error.detail ?? "").contains("[::1]:\(port)"), "\(error)")
        }
    }

    @Test("localhost with servers on both: IPv6 is tried first and wins; the async form too")
    func localhostPrefersIPv6() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let four = try Peer.listener()
            let port = four.localPort
            let six = try Peer.listener6(port: port)
            let stream = try TCPStream()
            defer { stream.release() }
            try blocking { try stream.activeOpen(host: "localhost", remotePort: port, timeout: .seconds(5)) }
            _ = try six.accept()
            #expect(stream.remoteAddress == .v6(.loopback))
            #expect(throws: PeerError.self) { _ = try four.accept(timeout: 0.3) }
            try stream.abort()
            try await stream.activeOpen(host: "localhost", remotePort: port, timeout: .seconds(5))
            _ = try six.accept()
            #expect(stream.remoteAddress == .v6(.loopback))
        }
    }
}

/// Runs `body`, a synchronous closure: an async test calls the blocking forms through it.
private func blocking<T>(_ body: () throws -> T) rethrows -> T {
    try body()
}

/// Happy Eyeballs through a router namespace: an address that drops everything beside one
/// that answers, and two that fail, with names served by dnsmasq.
@Suite(
    "Happy Eyeballs", .serialized, .timeLimit(.minutes(1)),
    .enabled(if: NetworkLab.isAvailable && TestDNSServer.isAvailable, "needs root, iproute2 and dnsmasq"))
struct HappyEyeballsTests {
    private static func resolver(_ server: TestDNSServer) -> DNR {
        let configuration = DNRConfiguration(nameServers: [server.nameServer], searchDomains: [], timeout: .seconds(2), attempts: 1)
        return DNR(files: DNRTests.noFiles, environment: [:], configuration: configuration)
    }

    @Test("the first address black-holed: the second is tried 250 ms later and wins, long before the timeout; blocking and async")
    func fallbackAfterDelay() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let lab = try NetworkLab()
            defer { lab.tearDown() }
            let server = try TestDNSServer(["--host-record=he.test,10.213.7.1,fd00:213:1::fe"])
            let resolver = Self.resolver(server)
            // RFC 6724 puts IPv4 before a ULA: the dropped IPv4 address is tried first.
            #expect(try await resolver.addresses(for: "he.test") == [.v4(0x0AD5_0701), IPAddress("fd00:213:1::fe")!])
            let listener = try lab.within(lab.router) { try Peer.listener6("fd00:213:1::fe") }
            for useAsync in [false, true] {
                let stream = try TCPStream()
                defer { stream.release() }
                var events: [TCPEvent] = []
                let recorded = Mutex<[TCPEvent]>([])
                stream.asr = { event, _ in recorded.withLock { $0.append(event) } }
                let start = ContinuousClock.now
                if useAsync {
                    try await stream.activeOpen(host: "he.test", remotePort: listener.localPort, timeout: .seconds(10), resolver: resolver)
                } else {
                    try blocking {
                        try stream.activeOpen(host: "he.test", remotePort: listener.localPort, timeout: .seconds(10), resolver: resolver)
                    }
                }
                let elapsed = ContinuousClock.now - start
                // The losing attempt's socket is closed: no connect to 10.213.7.1 is left pending.
                #expect(try !Self.synSent(to: "0107D50A:\(String(format: "%04X", listener.localPort))"), "async: \(useAsync)")
                let peer = try listener.accept()
                #expect(stream.remoteAddress == IPAddress("fd00:213:1::fe")!, "async: \(useAsync)")
                #expect(elapsed >= .milliseconds(240) && elapsed < .seconds(3), "async: \(useAsync), \(elapsed)")
                try await stream.send("hello")
                #expect(try peer.receive() == Array("hello".utf8))
                try blocking { try stream.close() }
                await TestExecutor.sleep(for: .milliseconds(100))
                events = recorded.withLock { $0 }
                // The losing attempt left nothing: no ICMP report, no termination.
                #expect(!events.contains(.icmpReceived) && !events.contains(.terminate), "\(events)")
            }
        }
    }

    @Test("1,000 opens by name at once (2,000 questions to a real server): half connect, half are refused; no descriptor is left")
    func thousandOpensByName() async {
        // In a process of its own: it counts the process's descriptors.
        let result = await withTaskExecutorPreference(TestExecutor.shared) {
            await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) { () async -> Void in
                do {
                    try await manyOpensByNameInChild(count: 1000)
                } catch {
                    exit(9)
                }
            }
        }
        recordChildErrors(result)
    }

    /// Whether this namespace has a TCP socket in SYN-SENT towards `remote` (`/proc/net/tcp`'s
    /// `ADDR:PORT` in hex, the address in the kernel's byte order).
    private static func synSent(to remote: String) throws -> Bool {
        let table = try String(contentsOfFile: "/proc/net/tcp", encoding: .utf8)
        return table.split(separator: "\n").contains { line in
            let fields = line.split(separator: " ")
            return fields.count > 3 && fields[2] == remote && fields[3] == "02"
        }
    }

    @Test("the resolution counts against the open's timeout: a silent name server ends the open at its timeout, blocking and async")
    func resolutionWithinTimeout() async throws {
        try await withTaskExecutorPreference(TestExecutor.shared) {
            let silent = try UDPStream()
            defer { silent.release() }
            let configuration = DNRConfiguration(
                nameServers: ["127.0.0.1:\(silent.port)"], searchDomains: [], timeout: .seconds(20), attempts: 1)
            let resolver = DNR(files: DNRTests.noFiles, environment: [:], configuration: configuration)
            defer { resolver.close() }
            let stream = try TCPStream()
            defer { stream.release() }
            for useAsync in [false, true] {
                let start = ContinuousClock.now
                do {
                    if useAsync {
                        try await stream.activeOpen(host: "slow\(useAsync).test", remotePort: 80, timeout: .seconds(1), resolver: resolver)
                    } else {
                        try blocking {
                            try stream.activeOpen(host: "slow\(useAsync).test", remotePort: 80, timeout: .seconds(1), resolver: resolver)
                        }
                    }
                    Issue.record("resolved a name nobody answers")
                } catch let error as MacTCPError {
                    #expect(error == .openFailed && error.errno == ETIMEDOUT, "\(error)")
                }
                let elapsed = ContinuousClock.now - start
                #expect(elapsed >= .milliseconds(900) && elapsed < .seconds(5), "async: \(useAsync), \(elapsed)")
            }
        }
    }

    @Test("a name's link-local address without a scope is left out, not a reason to refuse the open")
    func unusableAddressSkipped() throws {
        let server = try TestDNSServer(["--host-record=ll.test,127.0.0.1,fe80::1"])
        let listener = try Peer.listener()
        let stream = try TCPStream()
        defer { stream.release() }
        try stream.activeOpen(host: "ll.test", remotePort: listener.localPort, timeout: .seconds(5), resolver: Self.resolver(server))
        _ = try listener.accept()
        #expect(stream.remoteAddress == .v4(IPv4.loopback))
    }

    @Test("every address failing: openFailed names each address and why; the router's ICMP host unreachable is reported")
    func everyAddressFails() throws {
        let lab = try NetworkLab()
        defer { lab.tearDown() }
        let server = try TestDNSServer(["--host-record=none.test,10.213.9.1,fd00:213:1::99"])
        let stream = try TCPStream()
        defer { stream.release() }
        let recorded = Mutex<[(TCPEvent, Int)]>([])
        stream.asr = { event, detail in recorded.withLock { $0.append((event, detail)) } }
        let start = ContinuousClock.now
        do {
            try stream.activeOpen(host: "none.test", remotePort: 80, timeout: .seconds(1.5), resolver: Self.resolver(server))
            Issue.record("connected to nothing")
        } catch let error as MacTCPError {
            let text = error.description
            #expect(error == .openFailed, "\(text)")
            #expect(
                text.contains("10.213.9.1:80: No route to host") && text.contains("[fd00:213:1::99]:80: Connection timed out")
                    && text.contains("2 addresses tried"), "\(text)")
        }
        let elapsed = ContinuousClock.now - start
        #expect(elapsed >= .seconds(1.4) && elapsed < .seconds(4), "\(elapsed)")
        #expect(try stream.status().state == .closed)
        try waitUntil(timeout: 5, "the ICMP report") {
            recorded.withLock { $0.contains { $0.0 == .icmpReceived && $0.1 == ICMPMessageType.hostUnreach.rawValue } }
        }
    }
}

/// The body of the 1,000-opens test, in a child process: every name (`nN.many.test`, A
/// 127.0.0.1 and AAAA ::1 from dnsmasq) is opened at once, the even ones to a port that
/// listens on both loopbacks, the odd ones to a port where nothing listens. (Under this load
/// an AAAA answer may come more than 50 ms after the A, and the open then goes on with the A
/// alone, as RFC 8305 says.) Exits 3 when an even open did not connect, 4 when an odd one did
/// not fail with `openFailed` (connection refused), 20 + n when n descriptors (of any kind)
/// were left 5 s after the release.
func manyOpensByNameInChild(count: Int) async throws {
    exitAfter(seconds: 50)
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    limit.rlim_cur = limit.rlim_max
    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    let server = try TestDNSServer(["--address=/many.test/127.0.0.1", "--address=/many.test/::1"])
    let configuration = DNRConfiguration(nameServers: [server.nameServer], searchDomains: [], timeout: .seconds(5), attempts: 2)
    let resolver = DNR(files: DNRTests.noFiles, environment: [:], configuration: configuration)
    let listening = try Peer.listener6(backlog: Int32(count))
    let listeningFour = try Peer.listener(port: listening.localPort, backlog: Int32(count))
    let closed = try Peer.listener6()
    let refusedPort = closed.localPort
    closed.close()
    func openAll(_ names: Range<Int>) async throws -> [(Int, TCPStream, MacTCPError?)] {
        try await withThrowingTaskGroup(of: (Int, TCPStream, MacTCPError?).self) { group in
            for index in names {
                group.addTask(executorPreference: TestExecutor.shared) {
                    let stream = try TCPStream()
                    let port = index % 2 == 0 ? listening.localPort : refusedPort
                    do {
                        try await stream.activeOpen(
                            host: "n\(index).many.test", remotePort: port, timeout: .seconds(20), resolver: resolver)
                        return (index, stream, nil)
                    } catch let error as MacTCPError {
                        return (index, stream, error)
                    }
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
    }
    // A first round, so that what the runtime opens once (the reactor, threads' descriptors)
    // exists before the count.
    for (_, stream, _) in try await openAll(count..<count + 20) { stream.release() }
    let before = settledDescriptors()
    let opened = try await openAll(0..<count)
    for (index, stream, error) in opened {
        if index % 2 == 0 {
            if error != nil || ![.v6(.loopback), .v4(IPv4.loopback)].contains(stream.remoteAddress) { exit(3) }
        } else {
            guard error == .openFailed, error?.errno == ECONNREFUSED, (error?.detail ?? "").contains(":\(refusedPort)") else { exit(4) }
        }
        stream.release()
    }
    let left = descriptorsLeft(since: before)
    if left > 0 { exit(Int32(20 + min(200, left))) }
    _ = (server, listeningFour)
}
