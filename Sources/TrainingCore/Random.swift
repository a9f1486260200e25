/// A seeded, portable pseudo-random generator (xoshiro256**), so that a cell's data,
/// initialisation and probes are the same on every machine for the same seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: (UInt64, UInt64, UInt64, UInt64)

    /// Creates the generator of one named stream of a cell: different streams of the same seed
    /// are independent (data, labels, initialisation, test set, probes...).
    public init(seed: UInt64, stream: RandomStream) {
        var mixer = SplitMix64(state: seed &* 0x9E37_79B9_7F4A_7C15 ^ stream.rawValue)
        state = (mixer.next(), mixer.next(), mixer.next(), mixer.next())
    }

    /// The generator's four words of state, to save; `init(stateWords:)` continues the stream.
    var stateWords: [UInt64] { [state.0, state.1, state.2, state.3] }

    /// A generator at a saved position of its stream (`stateWords`).
    init(stateWords words: [UInt64]) {
        precondition(words.count == 4)
        state = (words[0], words[1], words[2], words[3])
    }

    public mutating func next() -> UInt64 {
        let result = rotateLeft(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotateLeft(state.3, 45)
        return result
    }

    /// A uniform double in [0, 1) with 53 random bits.
    public mutating func nextUniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// A standard normal deviate (Box-Muller; one of the pair is discarded so that the stream
    /// position does not depend on how many were asked for before).
    public mutating func nextGaussian() -> Double {
        let u1 = 1.0 - nextUniform()  // in (0, 1]: log is finite
        let u2 = nextUniform()
        return (-2.0 * _log(u1)).squareRoot() * _cos(2.0 * Double.pi * u2)
    }

    /// Fills `count` standard normal deviates.
    public mutating func gaussians(_ count: Int) -> [Double] {
        (0..<count).map { _ in nextGaussian() }
    }

    /// One seed from several values, each folded in through SplitMix64's bijective mixing:
    /// different lists give unrelated seeds, so the generators they seed are independent.
    public static func seed(mixing values: [UInt64]) -> UInt64 {
        var mixer = SplitMix64(state: 0)
        for value in values { mixer.state = mixer.next() ^ value }
        return mixer.next()
    }

    private func rotateLeft(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }
}

/// The independent random streams of one cell.
public enum RandomStream: UInt64, Sendable {
    case trainingData = 1
    case labels = 2
    case teacher = 3
    case initialisation = 4
    case testData = 5
    case testLabels = 6
    case probes = 7
    case fileSelection = 8
    /// A random sweep's draws of cells (from the sweep's seed, not a cell's).
    case sweepDraws = 9
    /// The BLAS self-check's matrices (not a cell's).
    case blasSelfCheck = 10
    /// `smooth_after_fit`'s off-data points and their ascent.
    case smoothing = 11
    /// Randomised tests' draws (never a cell's): a seeded stream, so a failure can be replayed.
    case testing = 12
}

private struct SplitMix64 {
    var state: UInt64

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
