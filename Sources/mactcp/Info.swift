// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser
import MacTCP

/// `mactcp info`: the driver-wide information.
struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the primary interface (address, netmask, MTU) and the kernel's TCP parameters and counters."
    )

    @Flag(help: "Print JSON.") var json = false

    func run() throws {
        let global: TCPGlobalInfo
        do {
            global = try MacTCPDriver.globalInfo()
        } catch {
            throw failure(for: error, doing: "info")
        }
        let p = global.parameters
        let s = global.statistics
        let rows: [(String, String)] = [
            ("interface", MacTCPDriver.interfaceName() ?? "none"),
            ("ipAddr", IPv4.string(MacTCPDriver.ipAddr())),
            ("netMask", IPv4.string(MacTCPDriver.netMask())),
            ("interfaceMTU", "\(MacTCPDriver.interfaceMTU())"),
            ("mtu", "\(MacTCPDriver.mtu())"),
            ("tcpRtoMin", "\(p.tcpRtoMin)"), ("tcpRtoMax", "\(p.tcpRtoMax)"),
            ("tcpMaxSegSize", "\(p.tcpMaxSegSize)"), ("tcpMaxConn", "\(p.tcpMaxConn)"),
            ("tcpMaxWindow", "\(p.tcpMaxWindow)"),
            ("tcpConnAttempts", "\(s.tcpConnAttempts)"), ("tcpConnOpened", "\(s.tcpConnOpened)"),
            ("tcpConnAccepted", "\(s.tcpConnAccepted)"), ("tcpConnClosed", "\(s.tcpConnClosed)"),
            ("tcpConnAborted", "\(s.tcpConnAborted)"), ("tcpOctetsIn", "\(s.tcpOctetsIn)"),
            ("tcpOctetsOut", "\(s.tcpOctetsOut)"), ("tcpInputPkts", "\(s.tcpInputPkts)"),
            ("tcpOutputPkts", "\(s.tcpOutputPkts)"), ("tcpDupPkts", "\(s.tcpDupPkts)"),
            ("tcpRetransPkts", "\(s.tcpRetransPkts)"),
        ]
        if json {
            let fields = rows.map { name, value in
                Int(value) != nil ? "\"\(name)\":\(value)" : "\"\(name)\":\"\(value)\""
            }
            print("{" + fields.joined(separator: ",") + "}")
        } else {
            for (name, value) in rows {
                print(name.padding(18) + value)
            }
        }
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
