// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import MacTCP

#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a new thread of its own (the library's thread starter, `LibraryThread`):
/// the tool's blocking loops must not occupy Dispatch's shared workers, which its timers and
/// async code use. The thread blocks the asynchronous signals, so that SIGINT, SIGTERM and
/// SIGHUP reach the thread that unblocks them (``Interruption``).
func spawnThread(_ body: @escaping @Sendable () -> Void) {
    guard LibraryThread.start(name: "mactcp", body) else {
        complain("mactcp: cannot start a thread: \(String(cString: strerror(errno)))")
        ProcessExit.now(ExitStatus.broken)
    }
}
