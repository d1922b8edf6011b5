import Glibc

/// RFC 3339 UTC timestamps with milliseconds (`2026-11-25T09:30:00.123Z`), the one format sriovd stores and
/// serves. Lexicographic order equals time order, so the store can compare them as text.
public enum Timestamp {
    /// Now, formatted.
    public static func now() -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return format(seconds: Int(spec.tv_sec), milliseconds: Int(spec.tv_nsec / 1_000_000))
    }

    /// `seconds` from now, formatted (a lease's expiry).
    public static func after(seconds: Int) -> String {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return format(seconds: Int(spec.tv_sec) + seconds, milliseconds: Int(spec.tv_nsec / 1_000_000))
    }

    /// Seconds since the epoch and a millisecond part, formatted.
    public static func format(seconds: Int, milliseconds: Int) -> String {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        var text = ""
        text.reserveCapacity(24)
        append(Int(parts.tm_year) + 1900, width: 4, to: &text)
        text.append("-")
        append(Int(parts.tm_mon) + 1, width: 2, to: &text)
        text.append("-")
        append(Int(parts.tm_mday), width: 2, to: &text)
        text.append("T")
        append(Int(parts.tm_hour), width: 2, to: &text)
        text.append(":")
        append(Int(parts.tm_min), width: 2, to: &text)
        text.append(":")
        append(Int(parts.tm_sec), width: 2, to: &text)
        text.append(".")
        append(milliseconds, width: 3, to: &text)
        text.append("Z")
        return text
    }

    /// Accepts RFC 3339 timestamps as query bounds: a date-time with `Z` or an offset, with or without
    /// fraction. Returns the canonical UTC form, or nil if the text is not one.
    public static func normalize(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes.count <= 35 else { return nil }
        func number(_ range: Range<Int>) -> Int? {
            var value = 0
            for i in range {
                guard bytes[i] >= 48, bytes[i] <= 57 else { return nil }
                value = value * 10 + Int(bytes[i] - 48)
            }
            return value
        }
        guard let year = number(0..<4), bytes[4] == 45, let month = number(5..<7), bytes[7] == 45,
            let day = number(8..<10), bytes[10] == 84 || bytes[10] == 116, let hour = number(11..<13),
            bytes[13] == 58, let minute = number(14..<16), bytes[16] == 58, let second = number(17..<19)
        else { return nil }
        guard (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61 else {
            return nil
        }
        var i = 19
        var millis = 0
        if i < bytes.count, bytes[i] == 46 {
            i += 1
            var digits = 0
            while i < bytes.count, bytes[i] >= 48, bytes[i] <= 57 {
                if digits < 3 { millis = millis * 10 + Int(bytes[i] - 48) }
                digits += 1
                i += 1
            }
            guard digits > 0 else { return nil }
            for _ in digits..<max(digits, 3) { millis *= 10 }
        }
        var offset = 0
        guard i < bytes.count else { return nil }
        if bytes[i] == 90 || bytes[i] == 122 {
            i += 1
        } else if bytes[i] == 43 || bytes[i] == 45, i + 6 == bytes.count, bytes[i + 3] == 58,
            let hours = number(i + 1..<i + 3), let minutes = number(i + 4..<i + 6)
        {
            offset = (hours * 60 + minutes) * 60 * (bytes[i] == 43 ? 1 : -1)
            i += 6
        } else {
            return nil
        }
        guard i == bytes.count else { return nil }
        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds = Int(timegm(&parts)) - offset
        return format(seconds: seconds, milliseconds: millis)
    }

    private static func append(_ value: Int, width: Int, to text: inout String) {
        text.append(value.zeroPadded(toWidth: width))
    }
}
