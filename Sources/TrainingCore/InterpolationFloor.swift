import Foundation

/// The interpolation floor: the smallest Lipschitz constant any function that fits the training
/// labels exactly can have on the data's support, max over pairs of |y_i - y_j| / dist(x_i, x_j).
/// With labels +-1 it is 2 / the smallest distance between two points of opposite labels. On the
/// sphere the distance is geodesic (the arc), so the floor bounds the tangential constant that
/// `lip_support_lower` estimates; in R^d it is Euclidean.
public enum InterpolationFloor {
    /// How distances along the support are measured.
    public enum Metric: Sendable {
        case euclidean
        /// The angle between the points, for points on the unit sphere.
        case geodesic
    }

    /// Pairs re-measured exactly after the Gram-matrix screening.
    static let exactPairs = 64

    /// Rows of a Gram block for n points: at most 512, and at most 2^20 entries (8 MiB).
    static func blockRows(n: Int) -> Int { max(1, min(512, (1 << 20) / max(1, n))) }

    /// The floor of `labels` at `inputs` (rows). Infinite when two equal points carry different
    /// labels (nothing interpolates them); 0 for fewer than two points or equal labels.
    ///
    /// Distances are screened from the Gram matrix a block of rows at a time (one GEMM each, so a
    /// sweep's n of thousands costs milliseconds to seconds), then the most extreme pairs are
    /// measured again from the points themselves, where the Gram form loses digits: the arc as
    /// 2 asin(||x_i/|x_i| - x_j/|x_j||| / 2), the Euclidean distance as ||x_i - x_j||.
    public static func value(
        inputs: Matrix<Double>,
        labels: [Double],
        metric: Metric,
        blockRows: Int? = nil
    )
        -> Double
    {
        let n = inputs.rows
        precondition(labels.count == n, "one label per point")
        guard n >= 2 else { return 0 }
        let blockRows = blockRows ?? Self.blockRows(n: n)
        let norms = (0..<n).map { i in inputs.row(i).reduce(0) { $0 + $1 * $1 }.squareRoot() }
        var best: [(ratio: Double, i: Int, j: Int)] = []
        var threshold = 0.0
        var start = 0
        while start < n {
            let end = min(n, start + blockRows)
            let block = Matrix<Double>(
                rows: end - start,
                columns: inputs.columns,
                storage: Array(inputs.storage[(start * inputs.columns)..<(end * inputs.columns)])
            )
            let gram = BLAS.multiply(block, inputs, transposeB: true)
            for r in 0..<(end - start) {
                let i = start + r
                for j in (i + 1)..<n where labels[i] != labels[j] {
                    let g = gram[r, j]
                    let distance: Double
                    switch metric {
                    case .euclidean:
                        distance = max(0, norms[i] * norms[i] + norms[j] * norms[j] - 2 * g).squareRoot()
                    case .geodesic:
                        let cosine = norms[i] > 0 && norms[j] > 0 ? g / (norms[i] * norms[j]) : 1
                        distance = acos(min(1, max(-1, cosine)))
                    }
                    let ratio = distance > 0 ? abs(labels[i] - labels[j]) / distance : .infinity
                    guard ratio > threshold else { continue }
                    best.append((ratio, i, j))
                    if best.count >= 4 * exactPairs {
                        best.sort { $0.ratio > $1.ratio }
                        best.removeLast(best.count - exactPairs)
                        threshold = best.last!.ratio / 2  // the screening's error stays well within this
                    }
                }
            }
            start = end
        }
        var floor = 0.0
        for pair in best {
            let x = inputs.row(pair.i)
            let y = inputs.row(pair.j)
            let distance: Double
            switch metric {
            case .euclidean:
                distance = zip(x, y).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
            case .geodesic:
                let (ni, nj) = (norms[pair.i], norms[pair.j])
                let chord = zip(x, y).reduce(0.0) { sum, xy in
                    let difference = xy.0 / ni - xy.1 / nj
                    return sum + difference * difference
                }
                distance = 2 * asin(min(1, chord.squareRoot() / 2))
            }
            let ratio = distance > 0 ? abs(labels[pair.i] - labels[pair.j]) / distance : .infinity
            floor = max(floor, ratio)
        }
        return floor
    }
}
