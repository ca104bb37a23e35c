import ArgumentParser
import MacTCP

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "A guided tour of a MacTCP connection on loopback.")
    func run() throws {}
}
