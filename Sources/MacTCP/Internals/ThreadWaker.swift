#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// Each thread's own eventfd, for sleeping in `poll` on a socket while staying wakeable by a
/// change made elsewhere (a thread in `wait()` polls the listener and this descriptor).
///
/// Made on the thread's first use and closed when the thread exits; a thread that never
/// sleeps that way never has one.
enum ThreadWaker {
    /// The key of the per-thread slot; the value is the descriptor plus one (0: none yet).
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let created = pthread_key_create(&key) { value in
            guard let value else { return }
            Sys.close(Int32(Int(bitPattern: value) - 1))
        }
        precondition(created == 0, "MacTCP: cannot create a thread-specific key")
        return key
    }()

    /// The calling thread's eventfd, made now if it has none; nil if none can be made (the
    /// caller then sleeps another way).
    static var current: Int32? {
        if let value = pthread_getspecific(key) { return Int32(Int(bitPattern: value) - 1) }
        let fd = Sys.eventFD()
        guard fd >= 0 else { return nil }
        guard pthread_setspecific(key, UnsafeRawPointer(bitPattern: Int(fd) + 1)) == 0 else {
            Sys.close(fd)
            return nil
        }
        return fd
    }
}
