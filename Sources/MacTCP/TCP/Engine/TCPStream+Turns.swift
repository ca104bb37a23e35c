// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// Waiting for a send or receive turn (``Connection/Turn``) held by another call.
extension TCPStream {
    /// Blocks until this call takes `turn` on `connection`: true once taken, false at the
    /// deadline. Throws `connectionTerminated` if the connection ends or is replaced first.
    func waitForTurn(
        _ turn: Connection.Turn,
        on connection: Connection,
        until deadline: Deadline,
        _ operation: String
    ) throws(MacTCPError) -> Bool {
        let taken = try core.wait(until: deadline) { state throws(MacTCPError) -> Bool? in
            try checkAlive(connection, state, operation)
            return connection.take(turn) ? true : nil
        }
        return taken != nil
    }

    /// ``waitForTurn(_:on:until:_:)`` suspending instead of blocking (the end of a turn that
    /// another call waits for is a change of the stream); throws `CancellationError` when the
    /// task is cancelled.
    func awaitTurn(
        _ turn: Connection.Turn,
        on connection: Connection,
        until deadline: Deadline,
        _ operation: String
    ) async throws -> Bool {
        while true {
            try Task.checkCancellation()
            let seen = changeCount
            let taken = try core.withLock { state throws(MacTCPError) -> Bool in
                try checkAlive(connection, state, operation)
                return connection.take(turn)
            }
            if taken { return true }
            switch await change(since: seen, deadline: deadline) {
            case .changed: continue
            case .timedOut: return false
            case .cancelled: throw CancellationError()
            }
        }
    }
}
