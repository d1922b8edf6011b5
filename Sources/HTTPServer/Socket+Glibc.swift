import CLinux
import Glibc

/// A failed system call, with the errno captured at the call.
public struct SocketError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let errno: Int32

    public var description: String { "\(operation) failed: \(String(cString: strerror(errno))) (errno \(errno))" }

    static func makeFailed(_ operation: String) -> SocketError {
        SocketError(operation: operation, errno: Glibc.errno)
    }
}

/// Thin wrappers over the socket calls; every one retries on EINTR.
enum Socket {
    /// Creates a non-blocking listening TCP socket bound to `host:port` and returns it with the bound address.
    static func makeListener(host: String, port: UInt16, backlog: Int32) throws -> (Int32, SocketAddress) {
        let literal = host == "localhost" ? "127.0.0.1" : host
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let family: Int32
        if inet_pton(AF_INET, literal, &v4.sin_addr) == 1 {
            family = AF_INET
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
        } else if inet_pton(AF_INET6, literal, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
        } else {
            throw SocketError(operation: "Parse host \(host)", errno: EINVAL)
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.makeFailed("Socket") }
        do {
            var one: Int32 = 1
            guard setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
                throw SocketError.makeFailed("SO_REUSEADDR")
            }
            let bound: Int32
            if family == AF_INET {
                bound = withUnsafePointer(to: &v4) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            } else {
                bound = withUnsafePointer(to: &v6) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                    }
                }
            }
            guard bound == 0 else { throw SocketError.makeFailed("Bind \(host):\(port)") }
            guard listen(fd, backlog) == 0 else { throw SocketError.makeFailed("Listen") }
            guard let address = localAddress(fd) else { throw SocketError.makeFailed("Getsockname") }
            return (fd, address)
        } catch {
            close(fd)
            throw error
        }
    }

    static func localAddress(_ fd: Int32) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0 else { return nil }
        return address(of: &storage)
    }

    static func address(of storage: inout sockaddr_storage) -> SocketAddress? {
        switch Int32(storage.ss_family) {
        case AF_INET:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { pointer in
                    var addr = pointer.pointee.sin_addr
                    var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                    inet_ntop(AF_INET, &addr, &text, socklen_t(text.count))
                    return SocketAddress(
                        host: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                        port: UInt16(bigEndian: pointer.pointee.sin_port)
                    )
                }
            }
        case AF_INET6:
            return withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { pointer in
                    var addr = pointer.pointee.sin6_addr
                    var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
                    inet_ntop(AF_INET6, &addr, &text, socklen_t(text.count))
                    return SocketAddress(
                        host: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                        port: UInt16(bigEndian: pointer.pointee.sin6_port)
                    )
                }
            }
        default:
            return nil
        }
    }

    /// Accepts one connection and makes it non-blocking and close-on-exec. Returns nil with errno set when none
    /// is accepted. (`accept` and `fcntl` rather than `accept4`: whether `accept4` is visible depends on which
    /// module first owns `<sys/socket.h>`, with or without `_GNU_SOURCE`.)
    static func accept(_ listener: Int32) -> (fd: Int32, peer: String)? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        while true {
            let fd = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(listener, $0, &length) }
            }
            if fd >= 0 {
                let flags = fcntl(fd, F_GETFL)
                guard flags >= 0, fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0, fcntl(fd, F_SETFD, FD_CLOEXEC) == 0
                else {
                    let saved = errno
                    close(fd)
                    errno = saved
                    return nil
                }
                let peer = address(of: &storage)?.description ?? "unix"
                return (fd, peer)
            }
            if errno == EINTR { continue }
            return nil
        }
    }

    /// TCP_NODELAY: a response is one write, so Nagle only adds delayed-ACK latency.
    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
}
