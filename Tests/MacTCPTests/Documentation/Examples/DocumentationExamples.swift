// swift-format-ignore-file
// (The documentation shows these examples with their comments aligned.)
// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Foundation
import MacTCP
import Synchronization

// Every Swift example of the documentation (README.md, the DocC catalog, the doc comments),
// word for word, compiled here and run by DocumentationTests. A line that ends with
// `// → text` must print exactly that text when it runs (`…` stands for any run of
// characters), so that a comment showing a wrong result fails the tests.

/// What each line of this file printed, by line number.
let exampleOutput = Mutex<[UInt: [String]]>([:])


/// The examples, as members of one type so that `print` in them is the recording one below.
enum Examples {
    /// Records what the examples print instead of writing it out.
    static func print(_ items: Any..., separator: String = " ", line: UInt = #line) {
        let text = items.map { "\($0)" }.joined(separator: separator)
        exampleOutput.withLock { $0[line, default: []].append(text) }
    }

    // MARK: - README: the front page's example

    static func readmeExample() throws {
        let server = try TCPStream()
        try server.passiveOpen(port: 0)                       // returns at once; 0: a free port
        let port = server.getSockName().port

        let client = try TCPStream()
        client.asr = { event, detail in print("client event:", event, detail) }
        try client.activeOpen(host: IPv4.loopback, remotePort: port, timeout: .seconds(5))
        try server.wait()                                     // the client is connected

        try client.send("GET / HTTP/1.0\r\n\r\n")
        let request = try server.receive(timeout: .seconds(5))
        print(request.data.count, request.urgent)             // → 18 false
        try client.send([0xFF, 0xF4], urgent: true)           // telnet's Interrupt Process
        let urgent = try server.receive(timeout: .seconds(5))
        print(urgent.data, urgent.urgent, urgent.mark)        // → [255, 244] true true

        try client.close()                                    // half-close: "no more from me"
        try server.send("HTTP/1.0 200 OK\r\n")                // the other direction stays open
        print(try server.status().state)                      // → closeWait
        server.release()
        client.release()
    }

    // MARK: - Getting started

    static func gettingStartedCreate() throws {
        let stream = try TCPStream()                              // kernel autotuning
        let small = try TCPStream(receiveBufferSize: 16_384)      // a fixed receive window
        stream.release()
        small.release()
    }

    static func gettingStartedPassiveOpen(stream: TCPStream, client: TCPStream) throws {
        try stream.passiveOpen(port: 0, timeout: .seconds(30))    // a free port, a deadline
        let name = stream.getSockName()
        print(IPv4.string(name.host), name.port != 0)             // → 0.0.0.0 true
        print(stream.isDone)                                      // → false
        try client.activeOpen(host: IPv4.loopback, remotePort: name.port, timeout: 5)
        try stream.wait()                                         // blocks until a client is connected
        print(stream.isDone)                                      // → true
    }

    static func gettingStartedSend(client: TCPStream) throws {
        let bigBuffer = [UInt8](repeating: 0x2A, count: 16_384)
        try client.send("GET / HTTP/1.0\r\n", push: false)       // may wait for the next send
        try client.send("\r\n")                                   // pushed: both leave together
        try client.send([0xFF, 0xF4], urgent: true)               // the mark falls on the last byte
        try client.send(bigBuffer, waitForAck: true)              // returns when the peer has acked it
    }

    static func gettingStartedReceive(stream: TCPStream) throws {
        let result = try stream.receive(timeout: .seconds(5), maxLength: 4096)
        print(result.data.count, result.urgent, result.mark)     // → 20 true true
    }

    static func gettingStartedReceiveInto(stream: TCPStream) throws {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let got = try buffer.withUnsafeMutableBytes { try stream.receive(into: $0, timeout: .seconds(5)) }
        print(got.count, got.urgent, got.mark)                    // → 4096 false false
    }

    static func gettingStartedStatus(stream: TCPStream) throws {
        let status = try stream.status()
        print(status.state, IPv4.string(status.remoteHost))       // → established 127.0.0.1
        print(status)                                             // → TCPStatus(established, 127.0.0.1:… ↔ 127.0.0.1:…, …)
    }

    static func gettingStartedClose(client: TCPStream) throws {
        try client.close()                                        // returns when our FIN is acked
        while let more = try? client.receive(timeout: 5) {        // the peer may still answer
            print("the peer answered", more.data.count, "bytes")  // → the peer answered 5 bytes
        }
        try? client.abort()                                       // RST, if the connection still exists
        client.release()                                          // or just drop the last reference
    }

    static func gettingStartedUDP() throws {
        let udp = try UDPStream(receiveBufferSize: 65_536, port: 0)   // port 0: the system picks
        udp.asr = { event, detail in print(event, detail) }           // .dataArrival, .icmpReceived
        try udp.write(host: IPv4.address("127.0.0.1")!, port: udp.port, Array("hello".utf8))
        let datagram = try udp.read(timeout: .seconds(2))               // commandTimeout if none came
        print(datagram)                                                 // → UDPDatagram(5 bytes from 127.0.0.1:…)
        print(try udp.maxMTUSize(remoteHost: IPv4.loopback))            // → 65507
        udp.release()
    }

    static func gettingStartedICMPReport() throws {
        let udp = try UDPStream()
        let closedPort = try UDPStream()
        let port = closedPort.port
        closedPort.release()                                            // nothing listens there now
        try udp.write(host: IPv4.loopback, port: port, Array("anyone?".utf8))
        for _ in 0..<40 where udp.lastICMPReport == nil { _ = try? udp.read(timeout: .milliseconds(50)) }
        if let report = udp.lastICMPReport {
            print(report)  // → port unreachable (type 3, code 3) from 127.0.0.1 about 127.0.0.1:…, MacTCP portUnreach
        }
        udp.release()
    }

    static func gettingStartedDriver() throws {
        print(IPv4.string(MacTCPDriver.ipAddr()))      // → ….….….…
        print(IPv4.string(MacTCPDriver.netMask()))     // → ….….….…
        print(MacTCPDriver.mtu() == MacTCPDriver.interfaceMTU() - 28)  // → true
        let info = try MacTCPDriver.globalInfo()                     // MacTCP's TCPParam and TCPStats
        print(info.parameters.tcpRtoMin)                             // → 200
        print(info.statistics.tcpRetransPkts >= 0)                   // → true
    }

    // MARK: - The ASR and its events

    static func asrExample(stream: TCPStream) {
        stream.asr = { event, detail in
            switch event {
            case .dataArrival: print("data is waiting")
            case .urgent: print("urgent data is waiting")
            case .closing: print("the peer has closed and everything was read")
            case .terminate: print("connection over:", TCPTerminationReason(rawValue: detail)!)
            case .icmpReceived: print("ICMP:", ICMPMessageType(rawValue: detail)!)
            case .ulpTimeout: print("data unacknowledged for the ULP period")
            case .passiveOpenDone: print("passive open finished with", detail)
            }
        }
    }

    static func eventSequenceExample(stream: TCPStream) async {
        for await (event, detail) in stream.events {
            print(event, detail)
            if event == .terminate { break }
        }
    }

    // MARK: - Urgent data and the mark

    static func urgentExample(client: TCPStream, server: TCPStream) throws {
        try client.send("URGENT!", urgent: true)
        try client.send(" then normal data")
        var text = ""
        while !text.hasSuffix("normal data") {
            let part = try server.receive(timeout: .seconds(5), maxLength: 3)
            text += String(decoding: part.data, as: UTF8.self)
            print(String(decoding: part.data, as: UTF8.self), part.urgent, part.mark)
        }
    }

    // MARK: - async/await

    static func echoServer(port: UInt16, poolSize: Int) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<poolSize {
                group.addTask {
                    while true {                                  // one connection after another
                        let stream = try TCPStream()
                        defer { stream.release() }
                        try stream.passiveOpen(port: port)
                        try await stream.wait()                   // a client has connected
                        do {
                            while true {
                                let received = try await stream.receive(timeout: .seconds(60))
                                try await stream.send(received.data)
                            }
                        } catch MacTCPError.connectionClosing {   // the client has closed
                            try await stream.close()
                        } catch {
                            continue                              // reset, timeout: serve the next one
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    static func echoClient(port: UInt16, message: String) async throws -> String {
        let stream = try TCPStream()
        defer { stream.release() }
        try await stream.activeOpen(host: IPv4.loopback, remotePort: port, timeout: .seconds(5))
        try await stream.send(message)
        try await stream.close()                                  // "no more data from me"
        var echo: [UInt8] = []
        do {
            while true { echo += try await stream.receive(timeout: .seconds(5)).data }
        } catch MacTCPError.connectionClosing {}                  // the server has closed too
        return String(decoding: echo, as: UTF8.self)
    }

    // The fix for top-level code: an async `main` of a `@main` type (compiled, not run here).
    enum EchoTool {
        static func main() async throws {
            let stream = try TCPStream()
            try await stream.activeOpen(host: IPv4.loopback, remotePort: 7, timeout: .seconds(5))
            try await stream.send("ping")                 // the async form: it suspends
            print(try await stream.receive(timeout: .seconds(5)).data)
        }
    }

    // MARK: - Doc comments

    static func tcpStreamDocExample() throws {
        let server = try TCPStream()
        try server.passiveOpen(port: 0)                      // a free port
        let port = server.getSockName().port
        let client = try TCPStream()
        try client.activeOpen(host: IPv4.loopback, remotePort: port)
        try server.wait()
        try client.send("hello")
        let result = try server.receive(timeout: .seconds(5))
        print(String(decoding: result.data, as: UTF8.self))  // → hello
    }

    static func macTCPErrorDocExample(stream: TCPStream) throws {
        do {
            let result = try stream.receive(timeout: .seconds(5))
            print(result.data.count)
        } catch MacTCPError.connectionClosing {
            print("the peer has closed and everything was read")  // → the peer has closed and everything was read
        }
    }

    static func udpStreamDocExample() throws {
        let udp = try UDPStream(port: 0)
        try udp.write(host: IPv4.loopback, port: udp.port, Array("ping".utf8))   // to itself
        let datagram = try udp.read(timeout: .seconds(2))
        print(datagram.data, IPv4.string(datagram.remoteHost))  // → [112, 105, 110, 103] 127.0.0.1
        udp.release()
    }

    static func dnrDocExample() throws {
        let result = try DNR.shared.strToAddr("localhost")
        print(result.isDone)  // → true
        print(IPv4.string(result.addresses[0]))  // → 127.0.0.1
    }

    static func dnrResultDocExample() throws {
        let result = try DNR.shared.strToAddr("localhost")
        try result.wait()
        print(IPv4.string(result.addresses[0]))  // → 127.0.0.1
    }

    // MARK: - The name resolver (TheResolver.md)

    static func resolverOnDone() throws {
        let dnr = try DNR(configuration: DNRConfiguration(nameServers: []))
        let result = try dnr.strToAddr("localhost")
        result.onDone { done in
            print(done.rtnCode, IPv4.string(done.addresses[0]))  // → 0 127.0.0.1
        }
        let mail = try dnr.mxInfo("localhost")
        print(mail.rtnCode == MacTCPError.authNameErr.code)  // → true
    }

    static func addresses(of name: String) async throws -> [UInt32] {
        let result = try DNR.shared.strToAddr(name)
        try await result.wait()
        return result.addresses
    }

    static func ipAddressDocExample() {
        let address = IPAddress("2001:DB8:0:0:0:0:0:1")!
        print(address)  // → 2001:db8::1
        print(IPAddress("::ffff:10.0.0.1") == .v4(0x0A00_0001))  // → true
    }

    // MARK: - Host names and IPv6 (HostNamesAndIPv6.md)

    static func hostNamesExample() throws {
        let server = try TCPStream()
        try server.passiveOpen(timeout: .seconds(10))
        let client = try TCPStream()
        try client.activeOpen(host: "localhost", remotePort: server.getSockName().port, timeout: .seconds(5))
        try server.wait()
        print(client.remoteAddress)  // → ::1
        print(try server.status().remoteHost == 0)  // → true
        client.release()
        server.release()
    }

    // MARK: - ICMP echo (ICMPEcho.md)

    static func echoExample() throws {
        let reply = try MacTCPDriver.echoICMP(to: .v6(.loopback), data: Array("are you there?".utf8), timeout: .seconds(2))
        print(reply.echoedData == Array("are you there?".utf8), reply.timeToLive)  // → true 64
    }

    static func listeningPortDocExample() throws {
        let listening = try TCPListeningPort(port: 0, backlog: 128)
        let stream = try TCPStream()
        try stream.passiveOpen(port: listening.port)   // as always; clients queue meanwhile
        print(listening.port > 0)  // → true
        stream.release()
        listening.close()
    }

    // MARK: - Servers under load (ServersUnderLoad.md; compiled, not run here)

    static func serve(port: UInt16, poolSize: Int) throws {
        let listening = try TCPListeningPort(port: port, backlog: 128)
        let threads = (0..<poolSize).map { _ in
            Thread {
                guard let stream = try? TCPStream() else { return }
                defer { stream.release() }
                while true {                                      // one connection after another
                    do {
                        try stream.passiveOpen(port: listening.port)
                        try stream.wait()
                        let request = try stream.receive(timeout: .seconds(30))
                        try stream.send("HTTP/1.1 200 OK\r\nContent-Length: \(request.data.count)\r\n\r\n")
                        try stream.send(request.data, push: true)
                        try stream.close()                        // "no more from me"
                        _ = try? stream.receive(timeout: .seconds(5))  // to the client's close
                    } catch {
                        try? stream.abort()                       // serve the next one
                    }
                }
            }
        }
        threads.forEach { $0.start() }
        withExtendedLifetime(listening) { while true { sleep(3600) } }
    }

    static func serveAsync(port: UInt16, poolSize: Int) async throws {
        let listening = try TCPListeningPort(port: port, backlog: 128)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<poolSize {
                group.addTask {
                    let stream = try TCPStream()
                    defer { stream.release() }
                    while true {
                        do {
                            try stream.passiveOpen(port: listening.port)
                            try await stream.wait()
                            let request = try await stream.receive(timeout: .seconds(30))
                            try await stream.send(request.data, push: true)
                            try await stream.close()
                        } catch {
                            try? stream.abort()
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        listening.close()
    }
}
