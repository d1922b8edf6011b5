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
            let v4 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in.self) }
            return SocketAddress(
                host: hostText(v4.sin_addr, family: AF_INET, length: INET_ADDRSTRLEN),
                port: UInt16(bigEndian: v4.sin_port))
        case AF_INET6:
            let v6 = withUnsafeBytes(of: &storage) { $0.load(as: sockaddr_in6.self) }
            return SocketAddress(
                host: hostText(v6.sin6_addr, family: AF_INET6, length: INET6_ADDRSTRLEN),
                port: UInt16(bigEndian: v6.sin6_port))
        default:
            return nil
        }
    }

    /// `inet_ntop`'s text for an `in_addr` or `in6_addr` of `family`, in a buffer of `length` characters.
    private static func hostText<Address>(_ address: Address, family: Int32, length: Int32) -> String {
        var text = [CChar](repeating: 0, count: Int(length))
        withUnsafeBytes(of: address) { _ = inet_ntop(family, $0.baseAddress, &text, socklen_t(text.count)) }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Accepts one connection and makes it non-blocking and close-on-exec. Returns nil with errno set when none
    /// is accepted. (`accept` and `fcntl` rather than `accept4`: whether `accept4` is visible depends on which
    /// module first owns `<sys/socket.h>`, with or without `_GNU_SOURCE`.) On a Unix socket, the peer's
    /// credentials come from SO_PEERCRED.
    static func accept(_ listener: Int32, isUnix: Bool = false) -> (
        fd: Int32, peer: String, credentials: PeerCredentials?
    )? {
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
                if isUnix {
                    return (fd, "unix", peerCredentials(fd))
                }
                let peer = address(of: &storage)?.description ?? "unix"
                return (fd, peer, nil)
            }
            if errno == EINTR { continue }
            return nil
        }
    }

    /// SO_PEERCRED: the pid, uid and gid of the process that connected to a Unix socket.
    static func peerCredentials(_ fd: Int32) -> PeerCredentials? {
        var credentials = sriovd_peer_credentials()
        var length = socklen_t(MemoryLayout<sriovd_peer_credentials>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) == 0,
            length == socklen_t(MemoryLayout<sriovd_peer_credentials>.size)
        else { return nil }
        return PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
    }

    /// Fills a `sockaddr_un` for `path`; a leading "@" names the abstract namespace. Returns the address length.
    static func unixAddress(_ path: String, into address: inout sockaddr_un) throws -> socklen_t {
        var bytes = Array(path.utf8)
        if bytes.first == UInt8(ascii: "@") { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !bytes.isEmpty, bytes.count < capacity else {
            throw SocketError(
                operation: "Unix socket path \(path) (longer than \(capacity - 1) bytes)", errno: ENAMETOOLONG)
        }
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            if bytes.count < raw.count { raw[bytes.count] = 0 }
        }
        let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
        // An abstract name's length is exact; a path's includes its terminating NUL.
        return socklen_t(offset + bytes.count + (bytes.first == 0 ? 0 : 1))
    }

    /// Creates a non-blocking listening Unix stream socket at `configuration.path` with the configured mode and
    /// group. A socket file no one accepts on (left by a crash) is replaced; a live socket or another kind of file
    /// is an error.
    static func makeUnixListener(_ configuration: HTTPServerConfiguration.UnixSocket, backlog: Int32) throws -> Int32 {
        var address = sockaddr_un()
        let length = try unixAddress(configuration.path, into: &address)
        let isAbstract = configuration.path.hasPrefix("@")
        var status = stat()
        if !isAbstract && lstat(configuration.path, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFSOCK else {
                throw SocketError(
                    operation: "Listen on \(configuration.path) (a file that is not a socket)", errno: EEXIST)
            }
            if isAccepting(&address, length: length) {
                throw SocketError(
                    operation: "Listen on \(configuration.path) (another process serves it)", errno: EADDRINUSE)
            }
            unlink(configuration.path)
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketError.makeFailed("Socket") }
        do {
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
            }
            guard bound == 0 else { throw SocketError.makeFailed("Bind \(configuration.path)") }
            guard isAbstract || chmod(configuration.path, mode_t(configuration.mode)) == 0 else {
                throw SocketError.makeFailed("Chmod \(configuration.path)")
            }
            if !isAbstract, let group = configuration.groupID {
                guard chown(configuration.path, uid_t.max, gid_t(group)) == 0 else {
                    throw SocketError.makeFailed("Chown \(configuration.path) to group \(group)")
                }
            }
            guard listen(fd, backlog) == 0 else { throw SocketError.makeFailed("Listen") }
            return fd
        } catch {
            close(fd)
            if !isAbstract { unlink(configuration.path) }
            throw error
        }
    }

    /// Whether something accepts connections at a Unix address (a blocking connect that fails at once otherwise).
    private static func isAccepting(_ address: inout sockaddr_un, length: socklen_t) -> Bool {
        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { return false }
        defer { close(probe) }
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(probe, $0, length) }
        }
        return result == 0
    }

    /// TCP_NODELAY: a response is one write, so Nagle only adds delayed-ACK latency.
    static func setNoDelay(_ fd: Int32) {
        var one: Int32 = 1
        _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
}
