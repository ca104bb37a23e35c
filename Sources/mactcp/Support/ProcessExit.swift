// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The tool's one way out of the process.
///
/// `exit` must not run on two threads at once: while one thread runs the exit handlers (the
/// watch board's removes the status file), a second one finding none left goes on to end the
/// process, and the file stays. The tool leaves from several threads (the main thread when a
/// command ends, the interruption thread, `connect`'s receiver), so each claims the exit
/// first: the first claim wins, and any later one waits for the process to end.
enum ProcessExit {
    private static let claimed = Atomic(false)

    /// Returns if this thread is the first to leave; otherwise never returns.
    static func claim() {
        guard claimed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        while true { pause() }
    }

    /// Ends the process with `status`, unless another thread is already ending it.
    static func now(_ status: Int32) -> Never {
        claim()
        exit(status)
    }
}
