import Glibc

/// Text for the operator and the logs, written straight to the file descriptor: unbuffered, so that "listening
/// on" is seen at once by whatever waits for it, even when standard output is a pipe or a file.
public enum Console {
    public static func output(_ line: String) { write(line + "\n", to: 1) }

    public static func error(_ line: String) { write(line + "\n", to: 2) }

    /// Writes all of `text`, retrying interrupted and partial writes; gives up quietly if the descriptor fails.
    static func write(_ text: String, to fd: Int32) {
        write(Array(text.utf8), to: fd)
    }

    /// Writes all of `bytes`, as `write(_:to:)` writes text.
    static func write(_ bytes: [UInt8], to fd: Int32) {
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 && errno == EINTR { continue }
                if written <= 0 { return }
                offset += written
            }
        }
    }
}
