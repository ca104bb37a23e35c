import Dispatch

/// A task executor on Dispatch's threads, for tests that measure how fast a suspended task
/// resumes while other suites keep Swift's cooperative pool busy with blocking calls.
final class TestExecutor: TaskExecutor, Sendable {
    static let shared = TestExecutor()
    private let queue = DispatchQueue(label: "MacTCPTests.executor", attributes: .concurrent)

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { [self] in job.runSynchronously(on: asUnownedTaskExecutor()) }
    }
}
