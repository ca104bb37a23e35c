// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// An IPv4 socket address as the library keeps it: host and port in host byte order.
struct Endpoint: Equatable, Sendable {
    var host: UInt32
    var port: UInt16
    /// The unspecified address and port, `0.0.0.0:0`.
    static let none = Endpoint(host: 0, port: 0)
}
