// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// A value given once, by whatever thread completes a call, and waited for by a blocked
/// thread: the blocking form of a call that completes through a callback.
final class OneShot<Value: Sendable>: Sendable {
    private let state = Lock<Value?>(nil)

    /// Gives the value (only the first one counts) and wakes the waiter.
    func give(_ value: Value) {
        state.withLock { state in
            if state == nil { state = value }
            self.state.broadcastWhileLocked()
        }
    }

    /// Blocks until the value is given.
    func wait() -> Value {
        while true {
            if let value = state.wait(until: .never, { $0 }) { return value }
        }
    }
}
