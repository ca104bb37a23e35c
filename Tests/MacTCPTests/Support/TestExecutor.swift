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
