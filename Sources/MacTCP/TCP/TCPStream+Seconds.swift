// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// The `Double`-seconds forms of every call that takes a timeout.
///
/// The timeout has no default here, so that calls leaving it out are not ambiguous with the
/// `Duration` forms. Zero waits without limit; a negative, non-finite or too large value
/// throws ``MacTCPError/invalidLength`` naming the argument.
extension TCPStream {
    /// ``passiveOpen(port:remoteHost:remotePort:timeout:options:)-(_,_,_,Duration,_)`` with the timeout in seconds.
    ///
    /// - Parameters:
    ///   - port: The local port; 0 lets the system choose a free one.
    ///   - remoteHost: Accept only this peer address (0: any).
    ///   - remotePort: Accept only this peer port (0: any).
    ///   - timeout: Seconds to wait for a client; 0 waits without limit.
    ///   - options: ULP timeout and action, and IP header settings.
    /// - Throws: As the `Duration` form; ``MacTCPError/invalidLength`` for a bad timeout.
    ///
    /// The corresponding MacTCP call is `TCPPassiveOpen`.
    public func passiveOpen(
        port: UInt16 = 0,
        remoteHost: UInt32 = 0,
        remotePort: UInt16 = 0,
        timeout: Double,
        options: TCPOpenOptions = .init()
    ) throws {
        try passiveOpen(
            port: port,
            remoteHost: remoteHost,
            remotePort: remotePort,
            timeout: try Timeouts.duration(timeout, operation: "passiveOpen"),
            options: options
        )
    }

    /// ``activeOpen(localPort:host:remotePort:timeout:options:)-9tbhg`` with the timeout in seconds.
    ///
    /// - Parameters:
    ///   - localPort: The local port; 0 lets the system choose.
    ///   - host: The remote IPv4 address, not 0.
    ///   - remotePort: The remote port, not 0.
    ///   - timeout: Seconds to try; 0 means up to the ULP timeout.
    ///   - options: ULP timeout and action, and IP header settings.
    /// - Throws: As the `Duration` form; ``MacTCPError/invalidLength`` for a bad timeout.
    ///
    /// The corresponding MacTCP call is `TCPActiveOpen`.
    public func activeOpen(
        localPort: UInt16 = 0,
        host: UInt32,
        remotePort: UInt16,
        timeout: Double,
        options: TCPOpenOptions = .init()
    ) throws {
        try activeOpen(
            localPort: localPort,
            host: host,
            remotePort: remotePort,
            timeout: try Timeouts.duration(timeout, operation: "activeOpen"),
            options: options
        )
    }

    /// ``activeOpen(localPort:address:remotePort:timeout:options:)-5lvt9`` with the timeout in
    /// seconds.
    ///
    /// - Parameters:
    ///   - localPort: The local port; 0 lets the system choose.
    ///   - address: The remote address, IPv4 or IPv6.
    ///   - remotePort: The remote port, not 0.
    ///   - timeout: Seconds to try; 0 means up to the ULP timeout.
    ///   - options: ULP timeout and action, and IP header settings.
    /// - Throws: As the `Duration` form; ``MacTCPError/invalidLength`` for a bad timeout.
    ///
    /// The corresponding MacTCP call is `TCPActiveOpen`.
    public func activeOpen(
        localPort: UInt16 = 0,
        address: IPAddress,
        remotePort: UInt16,
        timeout: Double,
        options: TCPOpenOptions = .init()
    ) throws {
        try activeOpen(
            localPort: localPort, address: address, remotePort: remotePort,
            timeout: try Timeouts.duration(timeout, operation: "activeOpen"), options: options)
    }

    /// The `activeOpen` that takes a host name or literal, with the timeout in seconds.
    ///
    /// - Parameters:
    ///   - localPort: The local port; 0 lets the system choose.
    ///   - host: A host name or an address literal.
    ///   - remotePort: The remote port, not 0.
    ///   - timeout: Seconds to try, resolution included; 0 means up to the ULP timeout.
    ///   - options: ULP timeout and action, and IP header settings.
    ///   - resolver: The resolver that turns a name into addresses.
    /// - Throws: As the `Duration` form; ``MacTCPError/invalidLength`` for a bad timeout.
    ///
    /// The corresponding MacTCP calls are `StrToAddr` followed by `TCPActiveOpen`.
    public func activeOpen(
        localPort: UInt16 = 0,
        host: String,
        remotePort: UInt16,
        timeout: Double,
        options: TCPOpenOptions = .init(),
        resolver: DNR = .shared
    ) throws {
        try activeOpen(
            localPort: localPort, host: host, remotePort: remotePort,
            timeout: try Timeouts.duration(timeout, operation: "activeOpen"), options: options, resolver: resolver)
    }

    /// ``passiveOpen(port:remoteAddress:remotePort:timeout:options:)-(_,_,_,Duration,_)`` with the timeout in
    /// seconds.
    ///
    /// - Parameters:
    ///   - port: The local port; 0 lets the system choose a free one.
    ///   - remoteAddress: Accept only this peer address (`.v4(0)`: any).
    ///   - remotePort: Accept only this peer port (0: any).
    ///   - timeout: Seconds to wait for a client; 0 waits without limit.
    ///   - options: ULP timeout and action, and IP header settings.
    /// - Throws: As the `Duration` form; ``MacTCPError/invalidLength`` for a bad timeout.
    ///
    /// The corresponding MacTCP call is `TCPPassiveOpen`.
    public func passiveOpen(
        port: UInt16 = 0,
        remoteAddress: IPAddress,
        remotePort: UInt16 = 0,
        timeout: Double,
        options: TCPOpenOptions = .init()
    ) throws {
        try passiveOpen(
            port: port, remoteAddress: remoteAddress, remotePort: remotePort,
            timeout: try Timeouts.duration(timeout, operation: "passiveOpen"), options: options)
    }

    /// ``receive(timeout:maxLength:)`` with the timeout in seconds.
    ///
    /// - Parameters:
    ///   - timeout: Seconds to wait for data; 0 waits without limit.
    ///   - maxLength: The most bytes to return, at least 1.
    /// - Returns: The data with its urgent and mark flags.
    /// - Throws: As the `Duration` form; ``MacTCPError/invalidLength`` for a bad timeout.
    ///
    /// The corresponding MacTCP call is `TCPRcv`.
    public func receive(timeout: Double, maxLength: Int = 65536) throws -> TCPReceived {
        try receive(timeout: try Timeouts.duration(timeout, operation: "receive"), maxLength: maxLength)
    }

    /// ``receive(into:timeout:)-(_,Duration)`` with the timeout in seconds (0: without limit).
    ///
    /// - Parameters:
    ///   - buffer: Where the bytes go, at least one byte long.
    ///   - timeout: Seconds to wait for data.
    /// - Returns: How many bytes were written, with the urgent and mark flags.
    /// - Throws: As the `Duration` form; ``MacTCPError/invalidLength`` for a bad timeout.
    ///
    /// The corresponding MacTCP call is `TCPRcv`.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, timeout: Double) throws -> TCPReceivedCount {
        try receive(into: buffer, timeout: try Timeouts.duration(timeout, operation: "receive"))
    }
}

/// The `Double`-seconds forms of the async calls that take a timeout.
extension TCPStream {
    /// The async ``activeOpen(localPort:host:remotePort:timeout:options:)-7t7fs``
    /// with the timeout in seconds.
    ///
    /// - Parameters:
    ///   - localPort: The local port; 0 lets the system choose.
    ///   - host: The remote IPv4 address, not 0.
    ///   - remotePort: The remote port, not 0.
    ///   - timeout: Seconds to try; 0 means up to the ULP timeout.
    ///   - options: ULP timeout and action, and IP header settings.
    /// - Throws: As the `Duration` form; ``MacTCPError/invalidLength`` for a bad timeout.
    ///
    /// The corresponding MacTCP call is `TCPActiveOpen`.
    public func activeOpen(
        localPort: UInt16 = 0,
        host: UInt32,
        remotePort: UInt16,
        timeout: Double,
        options: TCPOpenOptions = .init()
    ) async throws {
        try await activeOpen(
            localPort: localPort,
            host: host,
            remotePort: remotePort,
            timeout: try Timeouts.duration(timeout, operation: "activeOpen"),
            options: options
        )
    }

    /// The async ``receive(timeout:maxLength:)`` with the timeout in seconds.
    ///
    /// - Parameters:
    ///   - timeout: Seconds to wait for data; 0 waits without limit.
    ///   - maxLength: The most bytes to return, at least 1.
    /// - Returns: The data with its urgent and mark flags.
    /// - Throws: As the `Duration` form; ``MacTCPError/invalidLength`` for a bad timeout.
    ///
    /// The corresponding MacTCP call is `TCPRcv`.
    public func receive(timeout: Double, maxLength: Int = 65536) async throws -> TCPReceived {
        try await receive(timeout: try Timeouts.duration(timeout, operation: "receive"), maxLength: maxLength)
    }
}
