// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import MacTCP
import Testing

/// Every state error of a TCP stream (the rules of the MacTCP calls), call by call.
@Suite("State errors", .timeLimit(.minutes(1)))
struct StateErrorTests {
    @Test("a stream that never had a connection")
    func neverOpened() throws {
        let stream = try TCPStream()
        expectMacTCPError(.connectionDoesntExist) { try stream.send("x") }
        expectMacTCPError(.connectionDoesntExist) { _ = try stream.receive(timeout: 1) }
        expectMacTCPError(.connectionDoesntExist) { try stream.close() }
        expectMacTCPError(.connectionDoesntExist) { try stream.abort() }
        #expect(try stream.status().state == .closed)
        #expect(try stream.status().connectionState == 0)
        #expect(stream.isDone)
        try stream.wait()
        #expect(stream.getSockName() == (0, 0))
    }

    @Test("while a passive open is pending")
    func passivePending() throws {
        let stream = try TCPStream()
        try stream.passiveOpen()
        expectMacTCPError(.connectionDoesntExist) { try stream.send("x") }
        expectMacTCPError(.connectionDoesntExist) { _ = try stream.receive(timeout: 1) }
        expectMacTCPError(.connectionDoesntExist) { try stream.close() }
        expectMacTCPError(.connectionExists) { try stream.passiveOpen() }
        expectMacTCPError(.connectionExists) { try stream.activeOpen(host: IPv4.loopback, remotePort: 9) }
        let status = try stream.status()
        #expect(status.state == .listen)
        #expect(status.connectionState == 2)
        #expect(status.localPort == stream.getSockName().port)
        try stream.abort()
        expectMacTCPError(.connectionTerminated) { try stream.wait() }
    }

    @Test("while connected")
    func connected() throws {
        let pair = try activePair()
        expectMacTCPError(.connectionExists) { try pair.stream.passiveOpen() }
        expectMacTCPError(.connectionExists) { try pair.stream.activeOpen(host: IPv4.loopback, remotePort: 9) }
    }

    @Test("after our close: send and close are connectionClosing, receive works")
    func afterClose() throws {
        let pair = try activePair()
        try pair.stream.close()
        expectMacTCPError(.connectionClosing) { try pair.stream.send("x") }
        expectMacTCPError(.connectionClosing) { try pair.stream.close() }
        try pair.peer.send("y")
        #expect(try pair.stream.receive(timeout: 5).data == [121])
    }

    @Test("after a graceful end: send, close and receive are connectionClosing; abort has no connection")
    func afterGracefulEnd() throws {
        let log = EventLog()
        let pair = try activePair(events: log)
        try pair.stream.close()
        pair.peer.shutdownWrite()
        expectMacTCPError(.connectionClosing) { _ = try pair.stream.receive(timeout: 5) }
        try log.wait(for: .terminate)
        expectMacTCPError(.connectionClosing) { try pair.stream.send("x") }
        expectMacTCPError(.connectionClosing) { try pair.stream.close() }
        expectMacTCPError(.connectionClosing) { _ = try pair.stream.receive(timeout: 1) }
        expectMacTCPError(.connectionDoesntExist) { try pair.stream.abort() }
        #expect(try pair.stream.status().state == .closed)
        // And it may be opened again.
        let listener = try Peer.listener()
        try pair.stream.activeOpen(host: IPv4.loopback, remotePort: listener.localPort, timeout: 5)
        _ = try listener.accept()
    }

    @Test("after an abnormal end: send, receive and close are connectionTerminated until reopened")
    func afterAbnormalEnd() throws {
        let log = EventLog()
        let pair = try activePair(events: log)
        pair.peer.reset()
        try log.wait(for: .terminate)
        expectMacTCPError(.connectionTerminated) { try pair.stream.send("x") }
        expectMacTCPError(.connectionTerminated) { _ = try pair.stream.receive(timeout: 1) }
        expectMacTCPError(.connectionTerminated) { try pair.stream.close() }
        expectMacTCPError(.connectionDoesntExist) { try pair.stream.abort() }
        let status = try pair.stream.status()
        #expect(status.state == .closed && status.remotePort == 0 && status.sendWindow == 0)
        try pair.stream.passiveOpen(timeout: 5)
        let again = try Peer.connect(port: pair.stream.getSockName().port)
        try pair.stream.wait()
        try again.send("z")
        #expect(try pair.stream.receive(timeout: 5).data == [122])
    }

    @Test("after the user's abort: connectionDoesntExist")
    func afterAbort() throws {
        let pair = try activePair()
        try pair.stream.abort()
        expectMacTCPError(.connectionDoesntExist) { try pair.stream.send("x") }
        expectMacTCPError(.connectionDoesntExist) { _ = try pair.stream.receive(timeout: 1) }
        expectMacTCPError(.connectionDoesntExist) { try pair.stream.close() }
        expectMacTCPError(.connectionDoesntExist) { try pair.stream.abort() }
    }
}

@Suite("MacTCPError")
struct MacTCPErrorTests {
    @Test("every code has its name and number, equality is by code, descriptions say what failed")
    func codes() {
        let all: [(MacTCPError, String, Int)] = [
            (.ipBadLapErr, "ipBadLapErr", -23000), (.ipBadCnfgErr, "ipBadCnfgErr", -23001),
            (.ipNoCnfgErr, "ipNoCnfgErr", -23002), (.ipLoadErr, "ipLoadErr", -23003), (.ipBadAddr, "ipBadAddr", -23004),
            (.connectionClosing, "connectionClosing", -23005), (.invalidLength, "invalidLength", -23006),
            (.connectionExists, "connectionExists", -23007), (.connectionDoesntExist, "connectionDoesntExist", -23008),
            (.insufficientResources, "insufficientResources", -23009), (.invalidStreamPtr, "invalidStreamPtr", -23010),
            (.streamAlreadyOpen, "streamAlreadyOpen", -23011), (.connectionTerminated, "connectionTerminated", -23012),
            (.invalidBufPtr, "invalidBufPtr", -23013), (.invalidRDS, "invalidRDS", -23014), (.invalidWDS, "invalidRDS", -23014),
            (.openFailed, "openFailed", -23015), (.commandTimeout, "commandTimeout", -23016),
            (.duplicateSocket, "duplicateSocket", -23017), (.ipDontFragErr, "ipDontFragErr", -23032),
            (.ipDestDeadErr, "ipDestDeadErr", -23033), (.icmpEchoTimeoutErr, "icmpEchoTimeoutErr", -23035),
            (.ipNoFragMemErr, "ipNoFragMemErr", -23036), (.ipRouteErr, "ipRouteErr", -23037),
            (.nameSyntaxErr, "nameSyntaxErr", -23041), (.cacheFault, "cacheFault", -23042),
            (.noResultProc, "noResultProc", -23043), (.noNameServer, "noNameServer", -23044),
            (.authNameErr, "authNameErr", -23045), (.noAnsErr, "noAnsErr", -23046), (.dnrErr, "dnrErr", -23047),
            (.outOfMemory, "outOfMemory", -23048),
        ]
        for (error, name, code) in all {
            #expect(error.code == code)
            #expect(error.name == name)
            #expect(error.description.hasPrefix("\(name) (\(code))"))
        }
        let detailed = MacTCPError(code: -23012, operation: "receive", errno: 104)
        #expect(detailed == .connectionTerminated)
        #expect(detailed != .connectionClosing)
        #expect(detailed.description.contains("in receive"))
        #expect(detailed.description.contains("errno 104"))
        #expect(detailed.description.contains("reset"))
        #expect(!(MacTCPError.commandTimeout ~= detailed))
        #expect(MacTCPError.connectionTerminated ~= detailed)
    }

    @Test("dotted-quad text parses to host order and formats back")
    func addresses() {
        #expect(IPv4.address("127.0.0.1") == 0x7F00_0001)
        #expect(IPv4.address("255.255.255.255") == 0xFFFF_FFFF)
        #expect(IPv4.address("1.2.3") == nil)
        #expect(IPv4.address("1.2.3.256") == nil)
        #expect(IPv4.address("1.2.3.-4") == nil)
        #expect(IPv4.address("a.b.c.d") == nil)
        #expect(IPv4.string(0x7F00_0001) == "127.0.0.1")
        #expect(addrToStr(0x0A00_0102) == "10.0.1.2")
    }
}
