// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import Dispatch

/// A task executor on Dispatch's threads, for tests that measure how fast a suspended task
/// resumes while other suites keep Swift's cooperative pool busy with blocking calls, and for
/// every exit test: Swift Testing (6.3) reads an exit test's back channel with a blocking
/// `readToEnd()` in a child task, which holds a thread for the child's whole life. On the
/// cooperative pool (two threads on a two-core machine) two long exit tests at once stopped
/// every other async test of the run, and the exit tests that had ended could not even
/// register for their children's exit (seen with `gdb`: both pool threads in `readToEnd`).
///
/// Each job goes to a serial queue of its own: such queues target Dispatch's overcommitting
/// root queue, which starts another thread when those it has are blocked. (A concurrent queue
/// targets the root queue that is as wide as the processors, the cooperative pool's own, and
/// on this two-core machine its two threads were seen busy with blocking tests for 350 ms.)
final class TestExecutor: TaskExecutor, Sendable {
    static let shared = TestExecutor()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        DispatchQueue(label: "MacTCPTests.executor").async { [self] in
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}

extension TestExecutor {
    /// Sleeps for `duration` without Swift's cooperative pool, for tests on this executor.
    ///
    /// `Task.sleep` resumes the task through the pool: while blocking jobs are queued there
    /// (the synchronous suites, all started at once), a 50 ms sleep was measured to take 0.9 s
    /// with 40 of them, and in a sanitizer run of the whole suite the pool was held for 25 s.
    /// A test that slept 50 ms before making the peer reset the connection or send an urgent
    /// byte then did so only after the async receive waiting for it had timed out
    /// (`AsyncTests.reset` and `AsyncTests.urgent`, about one sanitizer run in ten). A
    /// continuation resumed from the timer of a serial queue of its own (which, as
    /// ``enqueue(_:)``'s, runs on an overcommitting thread) resumes the task on this executor
    /// on time: 50 ms, also with the pool blocked. (`DispatchQueue.global()` is the pool's own
    /// threads: 0.9 s.)
    static func sleep(for duration: Duration) async {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000)
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            DispatchQueue(label: "MacTCPTests.sleep").asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) {
                continuation.resume()
            }
        }
    }
}
