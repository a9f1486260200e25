import Foundation
import Testing
import TrainingCore

/// The interpolation floor against its definition, pair by pair.
@Suite struct InterpolationFloorTests {
    func bruteForce(_ x: Matrix<Double>, _ y: [Double], geodesic: Bool) -> Double {
        var floor = 0.0
        for i in 0..<x.rows {
            for j in (i + 1)..<x.rows where y[i] != y[j] {
                let a = x.row(i)
                let b = x.row(j)
                let distance: Double
                if geodesic {
                    let na = a.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    let nb = b.reduce(0) { $0 + $1 * $1 }.squareRoot()
                    let chord = zip(a, b).reduce(0) { $0 + ($1.0 / na - $1.1 / nb) * ($1.0 / na - $1.1 / nb) }
                    distance = 2 * asin(min(1, chord.squareRoot() / 2))
                } else {
                    distance = zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot()
                }
                floor = max(floor, distance > 0 ? abs(y[i] - y[j]) / distance : .infinity)
            }
        }
        return floor
    }

    @Test func matchesTheDefinitionOnRandomData() {
        var rng = SeededGenerator(seed: 3, stream: .testData)
        for trial in 0..<20 {
            let n = 10 + trial * 13
            let d = 1 + trial % 6
            let onSphere = trial % 2 == 0
            let x = (onSphere ? InputDistribution.sphere : .gaussian).sample(n, d: d, using: &rng)
            // +-1 labels, and continuous ones.
            let y = (0..<n).map { _ in trial % 3 == 0 ? rng.nextGaussian() : (rng.nextUniform() < 0.5 ? -1.0 : 1.0) }
            let floor = InterpolationFloor.value(
                inputs: x,
                labels: y,
                metric: onSphere ? .geodesic : .euclidean,
                blockRows: 7
            )
            let expected = bruteForce(x, y, geodesic: onSphere)
            // (On the circle of d = 1, two equal points with opposite labels make both infinite.)
            #expect(
                floor == expected || abs(floor - expected) <= 1e-9 * expected,
                "trial \(trial): \(floor) vs \(expected)"
            )
        }
    }

    @Test func knownCases() {
        // Two opposite labels a quarter circle apart: 2 / (pi / 2) on the sphere, 2 / sqrt(2) in R^2.
        let x = Matrix<Double>(rows: 3, columns: 2, storage: [1, 0, 0, 1, 1, 0])
        let y: [Double] = [1, -1, 1]
        #expect(abs(InterpolationFloor.value(inputs: x, labels: y, metric: .geodesic) - 4 / Double.pi) < 1e-12)
        #expect(abs(InterpolationFloor.value(inputs: x, labels: y, metric: .euclidean) - 2 / 2.0.squareRoot()) < 1e-12)
        // The same point with two labels: nothing interpolates it.
        let twice = Matrix<Double>(rows: 2, columns: 2, storage: [0.6, 0.8, 0.6, 0.8])
        #expect(InterpolationFloor.value(inputs: twice, labels: [1, -1], metric: .euclidean) == .infinity)
        // Two nearly equal points among many: the Gram screening finds them, the exact
        // re-measure gets their distance to full precision.
        var rng = SeededGenerator(seed: 4, stream: .testData)
        var cloud = InputDistribution.gaussian.sample(300, d: 5, using: &rng)
        for i in 0..<5 { cloud[1, i] = cloud[0, i] }
        cloud[1, 2] += 1e-7
        var labels = (0..<300).map { $0 % 2 == 0 ? 1.0 : -1.0 }
        labels[1] = -1
        let near = InterpolationFloor.value(inputs: cloud, labels: labels, metric: .euclidean)
        #expect(abs(near - 2 / 1e-7) <= 1e-6 * near, "\(near)")
        // One label everywhere, or one point: 0.
        #expect(InterpolationFloor.value(inputs: x, labels: [1, 1, 1], metric: .geodesic) == 0)
    }
}
