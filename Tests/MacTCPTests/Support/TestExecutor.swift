import Dispatch

/// A task executor on Dispatch's threads, for tests that measure how fast a suspended task
/// resumes while other suites keep Swift's cooperative pool busy with blocking calls.
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
