import Glibc

/// Runs a delegated plugin (SPEC.md, section 4): found on `CNI_PATH`, run with the same environment (but the
/// command) and the same configuration on stdin; its stderr is ours; its stdout is its result or its error.
public struct Delegate: Sendable {
    public let type: String
    public let environment: CNIEnvironment

    public init(type: String, environment: CNIEnvironment) {
        self.type = type
        self.environment = environment
    }

    /// The executable: the first `CNI_PATH` folder that has one named `type`.
    func executable() throws(CNIError) -> String {
        for folder in environment.path {
            let candidate = folder + "/" + type
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw CNIError(
            .invalidConfig, "the IPAM plugin \(type) is not on CNI_PATH",
            details: "CNI_PATH=\(environment.path.joined(separator: ":")); install it there or change ipam.type")
    }

    /// Runs `command` and returns its stdout; a failure is its error result, wrapped to say which plugin failed.
    @discardableResult
    public func run(_ command: CNICommand, config: [UInt8]) throws(CNIError) -> [UInt8] {
        let path = try executable()
        var variables = environment.variables
        variables["CNI_COMMAND"] = command.rawValue
        let (status, output) = try Self.spawn(path, environment: variables, stdin: config)
        guard status == 0 else {
            let document = try? JSON.parse(output)
            let code = document?["code"]?.int ?? 0
            let msg = document?["msg"]?.string ?? String(decoding: output.prefix(512), as: UTF8.self)
            let details = document?["details"]?.string ?? ""
            let what = "IPAM plugin \(type) failed \(command.rawValue) (its code \(code), exit status \(status))"
            // Passing on the delegate's own well-known code keeps "try again later" meaning that.
            if code == CNIError.Code.tryAgainLater.rawValue {
                throw CNIError(.tryAgainLater, what + ": " + msg, details: details)
            }
            throw CNIError(.delegateFailure, what + ": " + msg, details: details)
        }
        return output
    }

    /// posix_spawn with stdin and stdout on pipes, stderr inherited; waits for the exit.
    static func spawn(_ path: String, environment: [String: String], stdin: [UInt8]) throws(CNIError)
        -> (Int32, [UInt8])
    {
        var input: [Int32] = [0, 0]
        var output: [Int32] = [0, 0]
        guard pipe(&input) == 0, pipe(&output) == 0 else {
            throw CNIError(.ioFailure, "pipe: \(String(cString: strerror(errno)))")
        }
        // The parent's ends must not stay open in the child (it would never see the end of its stdin).
        for fd in [input[1], output[0]] { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, input[0], 0)
        posix_spawn_file_actions_adddup2(&actions, output[1], 1)
        posix_spawn_file_actions_addclose(&actions, input[0])
        posix_spawn_file_actions_addclose(&actions, output[1])
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup(path), nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, nil, argv, envp)
        close(input[0])
        close(output[1])
        guard spawned == 0 else {
            close(input[1])
            close(output[0])
            throw CNIError(.ioFailure, "could not run \(path): \(String(cString: strerror(spawned)))")
        }
        // The configuration is small (well under a pipe's 64 KiB), so writing it all first cannot deadlock.
        var offset = 0
        while offset < stdin.count {
            let written = stdin.withUnsafeBytes { write(input[1], $0.baseAddress! + offset, $0.count - offset) }
            if written < 0 {
                if errno == EINTR { continue }
                break
            }
            offset += written
        }
        close(input[1])
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(output[0], $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            if count <= 0 { break }
            result.append(contentsOf: buffer[0..<count])
        }
        close(output[0])
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS, which are macros.
        let exit = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
        return (exit, result)
    }
}
