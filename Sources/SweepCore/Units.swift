import Foundation

/// Sizes and durations as people write and read them, in one place: sweep files' `resources:`,
/// `worker --memory`, `plan` and the status pages all use these.
public enum Units {
    /// Bytes in `1048576`, `512MiB`, `24GiB`, `2.5GB`, `1TiB` (K/M/G/T with B: powers of 1000,
    /// with iB: powers of 1024; a bare K/M/G/T means the binary unit); nil if it is not a size.
    public static func parseSize(_ text: String) -> UInt64? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let digits = trimmed.prefix { $0.isNumber || $0 == "." }
        guard let value = Double(digits), value >= 0 else { return nil }
        let unit = trimmed.dropFirst(digits.count).trimmingCharacters(in: .whitespaces)
        let scales: [String: Double] = [
            "": 1, "B": 1,
            "K": 1024, "KiB": 1024, "KB": 1e3,
            "M": 1_048_576, "MiB": 1_048_576, "MB": 1e6,
            "G": 1_073_741_824, "GiB": 1_073_741_824, "GB": 1e9,
            "T": 1_099_511_627_776, "TiB": 1_099_511_627_776, "TB": 1e12,
        ]
        guard let scale = scales[unit] else { return nil }
        let bytes = (value * scale).rounded()
        return bytes < 1.8e19 ? UInt64(bytes) : nil
    }

    /// A size as people read it: `1.5 GiB`, `512 MiB`.
    public static func formatSize(_ bytes: UInt64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
        var value = Double(bytes)
        var unit = 0
        while value >= 1024 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(bytes) B" }
        let rounded = (value * 10).rounded() / 10
        let text = rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
        return "\(text) \(units[unit])"
    }

    /// Seconds in `90`, `1.5s`, `30m`, `2h`, `1h30m`, `1d`; nil if it is not a duration.
    public static func parseDuration(_ text: String) -> Double? {
        if let seconds = Double(text) { return seconds }
        let units: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86400]
        var total = 0.0
        var number = ""
        for character in text {
            if character.isNumber || character == "." {
                number.append(character)
            } else if let unit = units[character], let value = Double(number) {
                total += value * unit
                number = ""
            } else {
                return nil
            }
        }
        return number.isEmpty && !text.isEmpty ? total : nil
    }

    /// Seconds as a short duration: `42s`, `17m`, `3.5h`.
    public static func formatDuration(_ seconds: Double) -> String {
        if seconds < 90 { return "\(Int(seconds.rounded()))s" }
        if seconds < 5400 { return "\(Int((seconds / 60).rounded()))m" }
        return String(format: "%.1fh", seconds / 3600)
    }
}
