import CLinux
import Glibc

/// A detached pthread with a name and a stack size of its own, for the few long-lived threads that block in
/// system calls (event loops, the store's writer, the uevent reader) and so must stay off Swift's cooperative
/// pool.
public enum DetachedThread {
    private final class Body {
        let name: String
        let run: () -> Void
        init(name: String, run: @escaping () -> Void) {
            self.name = name
            self.run = run
        }
    }

    /// A thread could not be started; `errno` is what `pthread_create` returned.
    public struct SpawnError: Error, CustomStringConvertible {
        public let errno: Int32
        public var description: String { "pthread_create failed: \(String(cString: strerror(errno)))" }
    }

    /// Starts `run` on a new thread named `name` (at most 15 bytes are kept, the kernel's limit).
    public static func spawn(name: String, stackSize: Int = 4 << 20, _ run: @escaping @Sendable () -> Void)
        throws(SpawnError)
    {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        pthread_attr_setstacksize(&attributes, stackSize)
        let argument = Unmanaged.passRetained(Body(name: name, run: run)).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(
            &thread,
            &attributes,
            { argument in
                let body = Unmanaged<Body>.fromOpaque(argument!).takeRetainedValue()
                _ = sriovd_set_thread_name(body.name)
                body.run()
                return nil
            },
            argument
        )
        guard result == 0 else {
            Unmanaged<Body>.fromOpaque(argument).release()
            throw SpawnError(errno: result)
        }
        pthread_detach(thread)
    }
}
