import CKernels
import Foundation
import Testing

@testable import TrainingCore

/// The Lipschitz search's `CKernels` passes against plain loops: the float32 ascent's passes in
/// every instruction-set variant this machine runs, and the float64 (libmvec) activations against
/// libm. The ascent only steers, but a wrong slope or curvature would steer it badly, and the
/// float64 functions feed the certified bounds.
@Suite struct AscentKernelTests {
    static let k = 37  // not a multiple of 16 or 8: every tail path runs
    static let rows = 3

    static func random(_ count: Int, scale: Float, seed: UInt64) -> [Float] {
        var rng = SeededGenerator(seed: seed, stream: .probes)
        return (0..<count).map { _ in scale * Float(rng.nextGaussian()) }
    }

    @Test(arguments: [ActivationKind.tanh, .softplus])
    func slopesAndCurvaturesMatchTheScalarKernels(_ activation: ActivationKind) {
        let (k, rows) = (Self.k, Self.rows)
        let z = Self.random(rows * k, scale: 4, seed: 1)
        let b = Self.random(k, scale: 1, seed: 2)
        let a = Self.random(k, scale: 1, seed: 3)
        for variant in KernelVariant.supported {
            var slopes = z
            var curvatures = [Float](repeating: .nan, count: rows * k)
            isosweep_ascent_rows(
                variant,
                activation == .tanh ? Int32(ISOSWEEP_TANH) : Int32(ISOSWEEP_SOFTPLUS),
                Int64(rows),
                Int64(k),
                &slopes,
                &curvatures,
                b,
                a
            )
            for i in 0..<rows {
                for j in 0..<k {
                    let x = Double(z[i * k + j] + b[j])
                    let (slope, curvature): (Double, Double)
                    if activation == .tanh {
                        let t = Foundation.tanh(x)
                        (slope, curvature) = (1 - t * t, -2 * t * (1 - t * t))
                    } else {
                        let s = 1 / (1 + exp(-x))
                        (slope, curvature) = (s, s * (1 - s))
                    }
                    // FastMath's few-ulp functions, then two or three roundings.
                    let tolerance = 4e-6 * Double(abs(a[j]))
                    #expect(abs(Double(slopes[i * k + j]) - Double(a[j]) * slope) <= tolerance)
                    #expect(abs(Double(curvatures[i * k + j]) - Double(a[j]) * curvature) <= tolerance)
                }
            }
        }
    }

    @Test func reluCountsChangesAgainstTheReferenceAndUpdatesGradientsExactly() {
        let (k, rows, d) = (Self.k, Self.rows, 5)
        let b = Self.random(k, scale: 1, seed: 4)
        let a = Self.random(k, scale: 1, seed: 5)
        let w = Self.random(k * d, scale: 1, seed: 6)
        let z = Self.random(rows * k, scale: 1, seed: 7)
        // The reference: the same points moved a little, so that few units change (row 0), and a
        // row with every unit changed (row 2, beyond the limit).
        var reference = z.map { $0 + 0.05 }
        for j in 0..<k { reference[2 * k + j] = -(z[2 * k + j] + 2 * b[j]) }
        func slope(_ z: Float, _ j: Int) -> Float { z + b[j] > 0 ? a[j] : 0 }
        let gradients0 = Self.random(rows * d, scale: 1, seed: 8)
        let limit = 6
        for variant in KernelVariant.supported {
            var changes = [Int64](repeating: -1, count: rows)
            var gradients = gradients0
            isosweep_ascent_relu_rows(
                variant,
                Int64(rows),
                Int64(k),
                z,
                reference,
                b,
                a,
                &changes,
                &gradients,
                w,
                Int64(d),
                Int64(limit)
            )
            for i in 0..<rows {
                var expected = Array(gradients0[(i * d)..<((i + 1) * d)])
                var changed = 0
                for j in 0..<k {
                    let (s, r) = (slope(z[i * k + j], j), slope(reference[i * k + j], j))
                    guard s != r else { continue }
                    changed += 1
                    for c in 0..<d { expected[c] += (s - r) * w[j * d + c] }
                }
                #expect(changes[i] == Int64(changed))
                let got = Array(gradients[(i * d)..<((i + 1) * d)])
                if changed <= limit {
                    #expect(got == expected, "row \(i): the update is the plain loop's, bit for bit")
                } else {
                    #expect(got == Array(gradients0[(i * d)..<((i + 1) * d)]), "row \(i) is left to the GEMM")
                }
            }
            #expect(changes[2] > Int64(limit) && changes[0] <= Int64(limit), "both paths were exercised")
            #expect(changes[0] > 0, "row 0 crossed some units' hyperplanes")
        }
    }

    @Test func reluCurvatureIsTheSharpSoftplusOnes() {
        let (k, rows) = (Self.k, Self.rows)
        let z = Self.random(rows * k, scale: 0.3, seed: 9)
        let b = Self.random(k, scale: 0.1, seed: 10)
        let a = Self.random(k, scale: 1, seed: 11)
        let u0 = Self.random(2 * k, scale: 1, seed: 12)
        let zRows: [Int64] = [2, 0]
        let beta = Float(ReLUKernel.surrogateSharpness)
        for variant in KernelVariant.supported {
            var u = u0
            isosweep_ascent_relu_curvature_rows(variant, 2, Int64(k), &u, z, zRows, b, a, beta)
            for r in 0..<2 {
                for j in 0..<k {
                    let x = Double(beta) * Double(z[Int(zRows[r]) * k + j] + b[j])
                    let s = 1 / (1 + exp(-x))
                    let expected = Double(u0[r * k + j]) * Double(a[j]) * Double(beta) * s * (1 - s)
                    #expect(abs(Double(u[r * k + j]) - expected) <= 1e-5 * abs(Double(u0[r * k + j] * a[j])))
                }
            }
        }
    }

    /// libmvec's functions (at most 4 ulp) against libm's, over a range that reaches the
    /// overflow and underflow edges, for every variant (each takes its own vector width).
    @Test func float64ActivationsAgreeWithLibm() {
        var x: [Double] = [0, -0.0, 1e-300, -1e-300, 1e-8, -1e-8, 19.5, -19.5, 40, -40, 700, -700, 745, -745]
        var rng = SeededGenerator(seed: 13, stream: .probes)
        for _ in 0..<1001 { x.append(20 * rng.nextGaussian()) }
        for _ in 0..<1001 { x.append(0.5 * rng.nextGaussian()) }
        func within(_ got: [Double], _ expected: (Double) -> Double, _ inputs: [Double], _ name: String) {
            for (input, value) in zip(inputs, got) {
                let truth = expected(input)
                let tolerance = 8 * max(truth.magnitude.ulp, Double.leastNormalMagnitude)
                #expect(abs(value - truth) <= tolerance, "\(name)(\(input)) = \(value), libm \(truth)")
            }
        }
        let h = x.map { max($0, 0) + log1p(exp(-abs($0))) }
        for variant in KernelVariant.supported {
            var out = [Double](repeating: .nan, count: x.count)
            isosweep_tanh_f64(variant, Int64(x.count), x, &out)
            within(out, Foundation.tanh, x, "tanh")
            isosweep_softplus_f64(variant, Int64(x.count), x, &out)
            within(out, { max($0, 0) + log1p(exp(-abs($0))) }, x, "softplus")
            isosweep_sigmoid_f64(variant, Int64(x.count), x, &out)
            within(out, { $0 > 0 ? 1 / (1 + exp(-$0)) : exp($0) / (1 + exp($0)) }, x, "sigmoid")
            isosweep_softplus_slope_f64(variant, Int64(h.count), h, &out)
            within(out, { -expm1(-$0) }, h, "softplus slope")
        }
    }

    @Test(arguments: [ActivationKind.tanh, .softplus])
    func float64SlopesAndCurvaturesMatchTheScalarKernels(_ activation: ActivationKind) {
        let (k, rows) = (Self.k, Self.rows)
        let z = Self.random(rows * k, scale: 4, seed: 14).map(Double.init)
        let b = Self.random(k, scale: 1, seed: 15).map(Double.init)
        let a = Self.random(k, scale: 1, seed: 16).map(Double.init)
        for variant in KernelVariant.supported {
            var slopes = z
            var curvatures = [Double](repeating: .nan, count: rows * k)
            isosweep_ascent_rows_f64(
                variant,
                activation == .tanh ? Int32(ISOSWEEP_TANH) : Int32(ISOSWEEP_SOFTPLUS),
                Int64(rows),
                Int64(k),
                &slopes,
                &curvatures,
                b,
                a
            )
            for index in 0..<(rows * k) {
                let j = index % k
                let x = z[index] + b[j]
                let expected: (slope: Double, curvature: Double)
                if activation == .tanh {
                    let t = Foundation.tanh(x)
                    expected = (1 - t * t, -2 * t * (1 - t * t))
                } else {
                    let s = x >= 0 ? 1 / (1 + exp(-x)) : exp(x) / (1 + exp(x))
                    expected = (s, s * (1 - s))
                }
                #expect(abs(slopes[index] - a[j] * expected.slope) <= 1e-14 * abs(a[j]))
                #expect(abs(curvatures[index] - a[j] * expected.curvature) <= 1e-14 * abs(a[j]))
            }
        }
    }
}

/// The ascent's own products with W (`isosweep_ascent_xwt`, `isosweep_ascent_sw`) against a
/// float64 reference, at shapes that cross every block edge: rows not a multiple of the 6-row
/// block, units not a multiple of 16 or 32, inputs not a multiple of 16 and beyond 64.
@Suite struct AscentGEMMTests {
    @Test(
        .enabled(if: isosweep_isa_supported(Int32(ISOSWEEP_ISA_AVX512)) != 0, "the products run on AVX-512 only"),
        arguments: [(1, 1, 1), (5, 17, 5), (6, 32, 16), (7, 33, 63), (13, 100, 64), (12, 48, 65), (3, 15, 130)]
    )
    func productsAgreeWithAFloat64Reference(_ shape: (rows: Int, k: Int, d: Int)) {
        let (rows, k, d) = shape
        let x = AscentKernelTests.random(rows * d, scale: 1, seed: 20)
        let w = AscentKernelTests.random(k * d, scale: 1, seed: 21)
        let s = AscentKernelTests.random(rows * k, scale: 1, seed: 22)
        var packed = [Float](repeating: .nan, count: (k + 15) / 16 * 16 * d)
        isosweep_pack_units(Int64(k), Int64(d), w, &packed)
        // Guards one past the end of each output: nothing may be written there.
        var z = [Float](repeating: .nan, count: rows * k + 1)
        var g = [Float](repeating: .nan, count: rows * d + 1)
        isosweep_ascent_xwt(Int64(rows), Int64(k), Int64(d), x, packed, &z)
        isosweep_ascent_sw(Int64(rows), Int64(k), Int64(d), s, w, &g)
        #expect(z[rows * k].isNaN && g[rows * d].isNaN)
        for i in 0..<rows {
            for j in 0..<k {
                var (sum, magnitude) = (0.0, 0.0)
                for c in 0..<d {
                    sum += Double(x[i * d + c]) * Double(w[j * d + c])
                    magnitude += abs(Double(x[i * d + c]) * Double(w[j * d + c]))
                }
                #expect(abs(Double(z[i * k + j]) - sum) <= 1e-6 * magnitude, "Z[\(i), \(j)]")
            }
            for c in 0..<d {
                var (sum, magnitude) = (0.0, 0.0)
                for j in 0..<k {
                    sum += Double(s[i * k + j]) * Double(w[j * d + c])
                    magnitude += abs(Double(s[i * k + j]) * Double(w[j * d + c]))
                }
                #expect(abs(Double(g[i * d + c]) - sum) <= 1e-6 * magnitude, "G[\(i), \(c)]")
            }
        }
        // A row's result does not depend on its batch: the last row alone gives the same bits.
        var single = [Float](repeating: .nan, count: k)
        isosweep_ascent_xwt(1, Int64(k), Int64(d), Array(x[((rows - 1) * d)...]), packed, &single)
        #expect(single == Array(z[((rows - 1) * k)..<(rows * k)]))
    }
}
