// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// The library's own threads: the reactor and the threads that run ASRs.
///
/// Each is a detached pthread with a name (seen in `top -H`, `gdb`, `/proc/PID/task`) that
/// blocks the asynchronous signals, as Dispatch's worker threads do: a signal the
/// application sends to the process goes to one of its own threads, never interrupts the
/// library's `epoll_wait`, and never runs a handler in the middle of an ASR. Faults
/// (`SIGSEGV`, `SIGBUS`, `SIGILL`, `SIGFPE`, `SIGTRAP`, `SIGABRT`) stay deliverable.
package enum LibraryThread {
    /// Starts a thread named `name` (at most 15 bytes) that runs `body`; false when the
    /// system refuses a thread (the caller decides what that means).
    package static func start(name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
        // Sendable in fact: its only properties are immutable and Sendable; the class exists
        // to cross pthread_create's untyped context pointer.
        final class Start: Sendable {
            let name: String
            let body: @Sendable () -> Void
            init(name: String, body: @escaping @Sendable () -> Void) {
                self.name = name
                self.body = body
            }
        }
        var blocked = sigset_t()
        var previous = sigset_t()
        sigfillset(&blocked)
        for fault in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP, SIGABRT] { sigdelset(&blocked, fault) }
        // A new thread inherits the creating thread's mask.
        pthread_sigmask(SIG_BLOCK, &blocked, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        let context = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(
            &thread, nil,
            { context in
                let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
                Sys.setThreadName(start.name)
                start.body()
                return nil
            }, context)
        guard created == 0 else {
            Unmanaged<Start>.fromOpaque(context).release()
            return false
        }
        pthread_detach(thread)
        return true
    }
}
