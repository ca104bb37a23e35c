#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on a new thread of its own: the tool's blocking loops must not occupy
/// Dispatch's shared workers, which its timers and async code use.
func spawnThread(_ body: @escaping @Sendable () -> Void) {
    // Sendable in fact: its only property is an immutable @Sendable closure; the class exists
    // to cross pthread_create's untyped context pointer.
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    let context = Unmanaged.passRetained(Box(body)).toOpaque()
    var thread = pthread_t()
    pthread_create(&thread, nil, { context in
        Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().body()
        return nil
    }, context)
    pthread_detach(thread)
}
