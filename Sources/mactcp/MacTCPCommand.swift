import ArgumentParser

@main
struct MacTCPCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mactcp",
        abstract: "MacTCP's TCP stream objects on Linux: urgent data, push, half-close, abort and a live status.",
        subcommands: [Demo.self]
    )
}
