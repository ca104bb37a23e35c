// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import ArgumentParser

@main
struct MacTCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mactcp",
        abstract: "MacTCP's TCP streams on Linux: netcat for TCP's corners — urgent data, push, half-close, abort, live status.",
        discussion: ExitStatus.help,
        version: ExitStatus.version,
        subcommands: [
            Demo.self, Connect.self, Listen.self, SendFile.self, ReceiveFile.self, Watch.self, Info.self, UDP.self, Resolve.self, Ping.self,
        ]
    )

    /// Parses the command line and runs the command; the process ends through
    /// ``ProcessExit`` whichever way the command ends.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            ProcessExit.claim()
            exit(withError: error)
        }
        ProcessExit.now(ExitStatus.success)
    }
}
