// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import MacTCP
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// SIGINT, SIGTERM and SIGHUP abort the tool's connections (the peer gets a reset) and exit
/// with status 74; with no connection open, the tool exits 128 + the signal's number.
///
/// An interrupted transfer must never look complete: had the process simply died, the kernel
/// would close its sockets with an orderly FIN, and a receiver would take a truncated file
/// for a whole one. The handler only writes the signal's number to a pipe (all a signal
/// handler may safely do); a thread of its own, the one thread sure to have these signals
/// unblocked, reads it, aborts every stream it was given and exits. This holds whatever
/// signal mask and dispositions the tool was started with.
enum Interruption {
    private static let streams = Mutex<[TCPStream]>([])
    private static let installed = Atomic(false)

    /// Installs the handlers (once); call it before the first connection is opened.
    static func install() {
        guard !installed.exchange(true, ordering: .relaxed) else { return }
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { return }
        _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        interruptPipe = ends[1]
        let reader = ends[0]
        let signals = [SIGINT, SIGTERM, SIGHUP]
        spawnThread {
            var set = sigset_t()
            sigemptyset(&set)
            for signal in signals { sigaddset(&set, signal) }
            pthread_sigmask(SIG_UNBLOCK, &set, nil)
            var number: UInt8 = 0
            while read(reader, &number, 1) < 0 && errno == EINTR {}
            // The exit is this thread's from here: a command that ends because its stream
            // is aborted below waits for it.
            ProcessExit.claim()
            let aborted = streams.withLock { streams -> Int in
                var count = 0
                for stream in streams where (try? stream.abort()) != nil { count += 1 }
                return count
            }
            let name = String(cString: strsignal(Int32(number))).lowercased()
            if let ending = ending.withLock({ $0 }) {
                // The command has its own last words (ping's statistics) and status.
                exit(ending())
            }
            if aborted > 0 {
                complain("mactcp: \(name): connection aborted (the peer gets a reset)")
                exit(ExitStatus.broken)
            }
            // Nothing was cut short (an idle server, a connection not yet open): the usual
            // status of a process ended by a signal.
            complain("mactcp: \(name)")
            exit(128 + Int32(number))
        }
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { signal in
            var byte = UInt8(truncatingIfNeeded: signal)
            _ = write(interruptPipe, &byte, 1)
        }
        sigemptyset(&action.sa_mask)
        action.sa_flags = SA_RESTART
        for signal in signals { sigaction(signal, &action, nil) }
    }

    /// Aborts `stream` when a signal interrupts the tool.
    /// What the command does when a signal ends it instead of aborting streams: `body`
    /// prints its last words and gives the exit status.
    static func whenInterrupted(_ body: @escaping @Sendable () -> Int32) {
        install()
        ending.withLock { $0 = body }
    }

    private static let ending = Mutex<(@Sendable () -> Int32)?>(nil)

    static func guarding(_ stream: TCPStream) {
        install()
        streams.withLock { $0.append(stream) }
    }

    /// Stops guarding `stream` (it has ended, or is about to be released).
    static func release(_ stream: TCPStream) {
        streams.withLock { $0.removeAll { $0 === stream } }
    }
}

/// The pipe's writing end, for the signal handler. Written once, before the handlers are
/// installed; only read afterwards.
nonisolated(unsafe) private var interruptPipe: Int32 = -1
