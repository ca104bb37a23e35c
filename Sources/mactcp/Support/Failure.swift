// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser
import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The tool's exit statuses (documented in `mactcp --help` and the README).
enum ExitStatus {
    /// Everything worked (for `send`: every byte was acknowledged).
    static let success: Int32 = 0
    /// Bad arguments: host, port, size out of range (the status swift-argument-parser uses).
    static let usage: Int32 = 64
    /// The connection could not be opened: refused, unreachable, no answer.
    static let unavailable: Int32 = 69
    /// The name does not exist, or has no record of the type (`authNameErr`; sysexits' EX_NOHOST).
    static let noHost: Int32 = 68
    /// The local port is in use.
    static let portInUse: Int32 = 73
    /// The connection broke during the transfer, or not every byte was acknowledged.
    static let broken: Int32 = 74
    /// Nothing came within the timeout.
    static let timeout: Int32 = 75
    /// ICMP sockets are not allowed to this process (`ping`; sysexits' EX_NOPERM).
    static let noPermission: Int32 = 77
    /// No name server is configured (`noNameServer`; sysexits' EX_CONFIG).
    static let noNameServer: Int32 = 78

    /// The tool's version, for `mactcp --version`.
    static let version = "0.9.0"

    static let help = """
        Exit status: 0 success; 64 bad arguments; 68 no such host name (dnr); 69 could not \
        connect (refused, unreachable, no answer; dnr: the servers failed); 73 local port in use; \
        74 connection broken or data not acknowledged; 75 timed out (dnr: no server answered; \
        ping: no reply); 77 ICMP sockets not allowed (ping); 78 no name server (dnr).
        """
}

/// Turns a MacTCP error into a message with the code's name and a hint, and an exit status.
func failure(for error: any Error, doing what: String) -> ExitCode {
    guard let error = error as? MacTCPError else {
        complain("mactcp: \(what): \(error)")
        return ExitCode(ExitStatus.broken)
    }
    let hint: String
    let status: Int32
    switch error {
    case .ipNoCnfgErr where error.operation == "echoICMP":
        hint = "set net.ipv4.ping_group_range to include your group, or run as root"
        status = ExitStatus.noPermission
    case .icmpEchoTimeoutErr:
        hint = "the host did not answer in time"
        status = ExitStatus.timeout
    case .ipRouteErr, .ipDestDeadErr, .ipDontFragErr:
        hint = "the destination cannot be reached"
        status = ExitStatus.unavailable
    case .openFailed:
        hint = "is anything listening there, and is it reachable?"
        status = ExitStatus.unavailable
    case .duplicateSocket:
        hint = "another program uses that port; pick another one, or 0 for any free port"
        status = ExitStatus.portInUse
    case .commandTimeout:
        hint = "nothing arrived in time; use a longer --timeout, or 0 to wait without limit"
        status = ExitStatus.timeout
    case .ipBadAddr, .invalidLength, .nameSyntaxErr, .ipNoCnfgErr:
        hint = "check the arguments"
        status = ExitStatus.usage
    case .authNameErr:
        hint = "check the spelling; the name server says it does not exist"
        status = ExitStatus.noHost
    case .noAnsErr:
        hint = "is the name server in /etc/resolv.conf (or --server) running and reachable?"
        status = ExitStatus.timeout
    case .dnrErr:
        hint = "the name servers failed; try another with --server"
        status = ExitStatus.unavailable
    case .noNameServer:
        hint = "name a server with --server ADDRESS, or add a nameserver line to /etc/resolv.conf"
        status = ExitStatus.noNameServer
    case .connectionTerminated:
        hint = "the peer reset the connection, or it timed out"
        status = ExitStatus.broken
    default:
        hint = ""
        status = ExitStatus.broken
    }
    let reason = error.detail ?? error.meaning
    let system = error.errno.map { String(cString: strerror($0)) }
    if Console.json.load(ordering: .relaxed) {
        Console.line(
            "{\"error\":\(jsonString(error.name)),\"code\":\(error.code),\"operation\":\(jsonString(what)),"
                + "\"message\":\(jsonString(reason))" + (system.map { ",\"errno\":\(jsonString($0))" } ?? "")
                + (hint.isEmpty ? "" : ",\"hint\":\(jsonString(hint))") + ",\"exit\":\(status)}")
    } else {
        Console.line(
            "mactcp: \(what): \(error.name) (\(error.code)): \(reason)"
                + (system.map { " [\($0)]" } ?? "") + (hint.isEmpty ? "" : "\n  hint: \(hint)"))
    }
    return ExitCode(status)
}

/// Formats an event for people (stderr) or scripts (`--json`).
func describe(_ event: TCPEvent, _ detail: Int, json: Bool, stream: String) -> String {
    var extra = ""
    switch event {
    case .terminate: extra = TCPTerminationReason(rawValue: detail).map { "\($0)" } ?? "\(detail)"
    case .icmpReceived: extra = ICMPMessageType(rawValue: detail).map { "\($0)" } ?? "\(detail)"
    case .passiveOpenDone: extra = detail == 0 ? "ok" : MacTCPError(code: detail).name
    default: break
    }
    if json {
        return "{\"stream\":\(jsonString(stream)),\"event\":\"\(event)\",\"code\":\(event.rawValue),\"detail\":\(detail)"
            + (extra.isEmpty ? "" : ",\"meaning\":\(jsonString(extra))") + "}"
    }
    return "[\(stream)] event \(event) (\(event.rawValue))" + (extra.isEmpty ? "" : ": \(extra)")
}
