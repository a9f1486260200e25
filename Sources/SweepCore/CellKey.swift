/// A cell's key (`CellWork.key`, SHA-256 as 64 hex digits) held as its 32 bytes inline: the
/// scheduler keeps a million keys in 32 MB without a heap allocation each, and hashes one word
/// of them (a digest's bits are already uniform).
public struct CellKey: Hashable, Comparable, Sendable {
    var w0: UInt64
    var w1: UInt64
    var w2: UInt64
    var w3: UInt64

    /// The key written as 64 hex digits (either case); nil for anything else.
    public init?(hex: String) {
        var text = hex
        guard
            let words = text.withUTF8({ bytes -> (UInt64, UInt64, UInt64, UInt64)? in
                guard bytes.count == 64 else { return nil }
                func word(_ start: Int) -> UInt64? {
                    var value: UInt64 = 0
                    var invalid: UInt8 = 0
                    for i in start..<start + 16 {
                        let nibble = Self.nibbles[Int(bytes[i])]
                        invalid |= nibble
                        value = value << 4 | UInt64(nibble & 15)
                    }
                    return invalid & 0x80 == 0 ? value : nil
                }
                guard let a = word(0), let b = word(16), let c = word(32), let d = word(48) else { return nil }
                return (a, b, c, d)
            })
        else { return nil }
        (w0, w1, w2, w3) = words
    }

    /// Each byte's value as a hex digit, or 0x80 when it is not one (one lookup a digit: keys
    /// are parsed for every message that names a cell).
    private static let nibbles: [UInt8] = (0..<256).map { byte in
        switch byte {
        case 48...57: UInt8(byte - 48)
        case 97...102: UInt8(byte - 87)
        case 65...70: UInt8(byte - 55)
        default: 0x80
        }
    }

    /// The 64 lowercase hex digits, as the store and the wire write keys.
    public var hex: String {
        String(unsafeUninitializedCapacity: 64) { out in
            // Word by word without an array: keys are written for every message that names a cell.
            func put(_ word: UInt64, at start: Int) {
                for digit in 0..<16 {
                    let nibble = UInt8(truncatingIfNeeded: word >> UInt64(60 - 4 * digit)) & 15
                    out[start + digit] = nibble < 10 ? 48 + nibble : 87 + nibble
                }
            }
            put(w0, at: 0)
            put(w1, at: 16)
            put(w2, at: 32)
            put(w3, at: 48)
            return 64
        }
    }

    init(w0: UInt64, w1: UInt64, w2: UInt64, w3: UInt64) {
        (self.w0, self.w1, self.w2, self.w3) = (w0, w1, w2, w3)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(w0)
    }

    public static func < (a: CellKey, b: CellKey) -> Bool {
        (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3)
    }
}
