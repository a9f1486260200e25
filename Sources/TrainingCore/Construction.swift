public import Diagnostics
import Foundation

/// An interpolating network built, not trained (`trainer: construction`): one ReLU bump per
/// training point on the unit sphere, as wide as the data's separation allows. It shows what
/// Lipschitz constant is reachable with p = n (d + 2) + 1 parameters.
///
/// Let theta be the smallest angle between two training points (as directions) and
/// tau = cos(theta / 2). Unit i has w_i = x_i / (1 - tau), b_i = -tau / (1 - tau), a_i = y_i, so
/// on the sphere phi_i(x) = max(0, cos(alpha_i) - tau) / (1 - tau), alpha_i the angle from x_i:
/// a cap of angular radius theta / 2 with phi_i(x_i) = 1. Two caps never meet (a point in both
/// would be closer than theta / 2 to two centres theta apart), so f = sum_i y_i phi_i takes y_j
/// at x_j exactly. Inside cap i the tangential gradient has norm |y_i| sin(alpha) / (1 - tau),
/// largest at the rim alpha = theta / 2, and f is 0 between caps: the constant on the sphere is
/// max_i |y_i| sin(theta / 2) / (1 - cos(theta / 2)) = max_i |y_i| cot(theta / 4)
/// (`supportConstant`), about 4 / theta, twice the floor 2 / theta of labels +-1 at that distance.
/// Units beyond the n needed are zero.
public enum Construction {
    /// The network for `data` (unit-norm rows, up to rounding) with `width` >= n units.
    public static func build<Scalar: BLASScalar>(
        on data: Dataset<Scalar>,
        width: Int
    ) throws(IsosweepError) -> TrainingOutcome<Scalar> {
        let n = data.count
        let d = data.inputs.columns
        precondition(width >= n, "validated: width >= n")
        let directions = unitRows(data.inputs.converted(to: Double.self))
        let theta = try smallestAngle(directions)
        let tau = cos(theta / 2)
        var parameters = [Scalar](repeating: 0, count: width * (d + 2) + 1)
        let biasOffset = width * d
        let outputOffset = width * (d + 1)
        for i in 0..<n {
            for m in 0..<d { parameters[i * d + m] = Scalar(directions[i, m] / (1 - tau)) }
            parameters[biasOffset + i] = Scalar(-tau / (1 - tau))
            parameters[outputOffset + i] = data.labels[i]
        }
        let network = Network(inputDimension: d, width: width, activation: .relu, parameters: parameters)
        return TrainingOutcome(
            network: network,
            steps: 0,
            stopReason: .constructed,
            seconds: 0,
            flops: 2 * Double(n) * Double(n) * Double(d)  // the Gram matrix of the angles
        )
    }

    /// The construction's Lipschitz constant on the sphere for labels of largest magnitude
    /// `labelBound`: labelBound cot(theta / 4).
    public static func supportConstant(smallestAngle theta: Double, labelBound: Double = 1) -> Double {
        labelBound * sin(theta / 2) / (1 - cos(theta / 2))
    }

    /// The smallest angle between two rows of `directions` (unit rows), from blocks of the Gram
    /// matrix, the closest pairs measured again as 2 asin(||x_i - x_j|| / 2).
    public static func smallestAngle(_ directions: Matrix<Double>) throws(IsosweepError) -> Double {
        let n = directions.rows
        guard n >= 2 else { return .pi }
        var best: (cosine: Double, i: Int, j: Int) = (-2, 0, 1)
        let blockRows = InterpolationFloor.blockRows(n: n)
        var start = 0
        while start < n {
            let end = min(n, start + blockRows)
            let gram = BLAS.multiply(directions.rows(start..<end), directions, transposeB: true)
            for r in 0..<(end - start) {
                let i = start + r
                for j in (i + 1)..<n where gram[r, j] > best.cosine { best = (gram[r, j], i, j) }
            }
            start = end
        }
        var chord = 0.0
        for m in 0..<directions.columns {
            let difference = directions[best.i, m] - directions[best.j, m]
            chord += difference * difference
        }
        let angle = 2 * asin(min(1, chord.squareRoot() / 2))
        guard angle > 1e-6 else {
            throw IsosweepError(
                .invalidParameter,
                "training points \(best.i + 1) and \(best.j + 1) coincide (angle \(angle)): one bump per point cannot separate them",
                remedy: "use fewer points or a larger d, or another trainer"
            )
        }
        return angle
    }

    /// Each row scaled to unit norm.
    static func unitRows(_ x: Matrix<Double>) -> Matrix<Double> {
        var unit = x
        for i in 0..<x.rows {
            var norm = 0.0
            for m in 0..<x.columns { norm += x[i, m] * x[i, m] }
            norm = norm.squareRoot()
            guard norm > 0 else { continue }
            for m in 0..<x.columns { unit[i, m] /= norm }
        }
        return unit
    }
}
