/// A lower bound on the Lipschitz constant from far away: along a ray x = R u, for large R, a
/// ReLU-like unit is active exactly when w_j . u > 0, so the gradient tends to
/// g(u) = sum over { j : w_j . u > 0 } of a_j w_j. The regions that reach infinity are cones, and
/// a constant attained in one of them can lie far from every training or fresh point, where a
/// search near the data never looks.
///
/// Directions come from random draws, the units' own directions (both signs) and the gradients
/// found (u <- g(u) / ||g(u)||, a few times). The value reported is not g(u) but the network's
/// true gradient norm at a real point R u far enough out, so it is a certified lower bound
/// whatever the activation (for tanh, whose slopes vanish far away, it is small and harmless).
extension Lipschitz {
    /// Random directions tried, and refinements of each.
    static let rayDirections = 256
    static let rayRefinements = 8

    /// The largest gradient norm found far out along rays (a certified lower bound), and the point.
    public static func rayLowerBound(_ network: Network<Double>, seed: UInt64) -> (value: Double, point: [Double]) {
        let d = network.inputDimension
        let k = network.width
        let w = network.weights
        let a = network.outputWeights
        let b = network.biases
        guard d > 0, k > 0 else { return (0, []) }
        var rng = SeededGenerator(seed: seed, stream: .probes)
        func normalised(_ v: [Double]) -> [Double]? {
            let n = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return n > 0 && n.isFinite ? v.map { $0 / n } : nil
        }
        /// The asymptotic gradient along u.
        func asymptotic(_ u: [Double]) -> [Double] {
            var g = [Double](repeating: 0, count: d)
            for j in 0..<k {
                var dot = 0.0
                for i in 0..<d { dot += w[j, i] * u[i] }
                guard dot > 0 else { continue }
                for i in 0..<d { g[i] += a[j] * w[j, i] }
            }
            return g
        }
        var starts: [[Double]] = []
        for j in 0..<k {
            if let u = normalised(w.row(j)) {
                starts.append(u)
                starts.append(u.map { -$0 })
            }
        }
        for _ in 0..<rayDirections {
            if let u = normalised((0..<d).map { _ in rng.nextGaussian() }) { starts.append(u) }
        }
        // Refine each start towards its own gradient; keep the best few directions.
        var found: [(norm: Double, u: [Double])] = []
        for start in starts {
            var u = start
            var best = (norm: 0.0, u: u)
            for _ in 0...rayRefinements {
                let g = asymptotic(u)
                let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
                if norm > best.norm { best = (norm, u) }
                guard let next = normalised(g), next != u else { break }
                u = next
            }
            found.append(best)
        }
        found.sort { $0.norm > $1.norm }
        // Certify the best directions at real points: far enough that every unit whose
        // direction is not orthogonal to u has the sign it has at infinity.
        var result = (value: 0.0, point: [Double](repeating: 0, count: d))
        for candidate in found.prefix(16) {
            let u = candidate.u
            var radius = 1.0
            for j in 0..<k {
                var dot = 0.0
                for i in 0..<d { dot += w[j, i] * u[i] }
                if abs(dot) > 1e-12 { radius = max(radius, 10 * abs(b[j]) / abs(dot)) }
            }
            radius = min(radius, 1e8)
            let x = u.map { radius * $0 }
            var g = [Double](repeating: 0, count: d)
            for j in 0..<k {
                var z = b[j]
                for i in 0..<d { z += w[j, i] * x[i] }
                let slope = network.activation.derivative(z)
                for i in 0..<d { g[i] += a[j] * slope * w[j, i] }
            }
            let value = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
            if value > result.value { result = (value, x) }
        }
        return result
    }
}
