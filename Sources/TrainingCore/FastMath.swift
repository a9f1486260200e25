/// Float32 activations for the training step written without branches or libm calls, so that the
/// step's one pass over each row of the hidden matrix vectorises as relu's does (libm's tanhf and
/// log1pf are one call per hidden unit). Every function is a select between straight-line
/// polynomial paths; the maximum errors over every finite float, against the double-precision
/// functions, are measured by `FastMathTests` and stated there and in docs/performance.md. Metrics never use
/// them: they are computed in float64 with the exact functions. The float32 step runs the same
/// expressions vectorised in `CKernels` (bit for bit these in its baseline variant; with fused
/// multiply-adds, within the same bounds, in its AVX2 and AVX-512 ones: `StepKernelTests`).
enum FastMath {
    /// e^x for x <= 0 (arguments above 0 are treated as 0): Cody-Waite reduction x = n ln2 + r,
    /// |r| <= ln2/2, Cephes' degree-6 polynomial for e^r, and 2^n applied in two halves so that
    /// results down to the smallest subnormal are right.
    @inline(__always) static func expNonPositive(_ x: Float) -> Float {
        let c = x < -104 ? -104 : (x > 0 ? 0 : x)
        // Round c / ln2 to the nearest integer: adding and subtracting 1.5 * 2^23 does it in
        // float arithmetic (SSE2 has no rounding instruction; roundf would be a call).
        let shifter: Float = 12_582_912
        let shifted = c * 1.442_695_04 + shifter
        let n = shifted - shifter
        let r = (c - n * 0.693_359_375) - n * -2.121_944_4e-4
        var p: Float = 1.987_569_15e-4
        p = p * r + 1.398_199_95e-3
        p = p * r + 8.333_451_9e-3
        p = p * r + 4.166_579_59e-2
        p = p * r + 1.666_666_55e-1
        p = p * r + 5.000_000_12e-1
        let e = p * r * r + r + 1
        // n as an integer, read from the shifted sum's low bits (Int32(n) would check its range,
        // and a branch stops the loop vectorising); wrapping arithmetic for the same reason.
        let k = Int32(bitPattern: shifted.bitPattern &- shifter.bitPattern)  // in [-150, 0]
        let half = k &>> 1
        let first = Float(bitPattern: UInt32(bitPattern: half &+ 127) &<< 23)
        let second = Float(bitPattern: UInt32(bitPattern: k &- half &+ 127) &<< 23)
        return e * first * second
    }

    /// tanh: an odd Taylor polynomial near 0 (|x| < 0.35, where 1 - 2/(e^2x + 1) would cancel),
    /// (1 - e) / (1 + e) with e = e^(-2|x|) beyond, and x's sign (so -0 stays -0).
    @inline(__always) static func tanh(_ x: Float) -> Float {
        let a = Float(bitPattern: x.bitPattern & 0x7FFF_FFFF)
        let x2 = x * x
        var q: Float = -1382.0 / 155_925.0
        q = q * x2 + 62.0 / 2835.0
        q = q * x2 - 17.0 / 315.0
        q = q * x2 + 2.0 / 15.0
        q = q * x2 - 1.0 / 3.0
        let small = x * (1 + x2 * q)  // x * (...), not x + ..., so that tanh(-0) is -0
        let e = expNonPositive(-2 * a)
        let large = (1 - e) / (1 + e)
        let signed = Float(bitPattern: large.bitPattern | (x.bitPattern & 0x8000_0000))
        return a < 0.35 ? small : signed
    }

    /// log(1 + u) for u in [0, 1] as u q(u), q a degree-10 polynomial (Chebyshev interpolation
    /// of log(1 + u) / u on [0, 1], coefficients rounded to float; 1.9 ulp at most without fused
    /// multiply-adds, 1.5 with): taken from u itself, so no bit of u is lost to forming 1 + u, and
    /// for tiny u it is u to rounding. No division: a division per element was the softplus step's
    /// costliest instruction, and the sigmoid beside it needs one already.
    @inline(__always) static func log1pUnit(_ u: Float) -> Float {
        var q: Float = 0.00203769049
        q = q * u - 0.0134448307
        q = q * u + 0.0415576212
        q = q * u - 0.0825353339
        q = q * u + 0.12425103
        q = q * u - 0.161086321
        q = q * u + 0.198915377
        q = q * u - 0.249873921
        q = q * u + 0.333325684
        q = q * u - 0.499999821
        q = q * u + 1.0
        return u * q
    }

    /// softplus(z) = max(z, 0) + log(1 + e^(-|z|)).
    @inline(__always) static func softplus(_ z: Float) -> Float {
        let a = Float(bitPattern: z.bitPattern & 0x7FFF_FFFF)
        return (z > 0 ? z : 0) + log1pUnit(expNonPositive(-a))
    }

    /// softplus(z) and its slope sigmoid(z) from one exponential e = e^(-|z|): 1 / (1 + e) for
    /// z >= 0, e / (1 + e) below (no cancellation on either side).
    @inline(__always) static func softplusAndSigmoid(_ z: Float) -> (Float, Float) {
        let a = Float(bitPattern: z.bitPattern & 0x7FFF_FFFF)
        let e = expNonPositive(-a)
        let positive = z > 0
        let value = (positive ? z : 0) + log1pUnit(e)
        let slope = (positive ? 1 : e) / (1 + e)
        return (value, slope)
    }

    /// sigmoid(z), the slope of `softplusAndSigmoid` without the value (the same expressions).
    @inline(__always) static func sigmoid(_ z: Float) -> Float {
        let e = expNonPositive(-Float(bitPattern: z.bitPattern & 0x7FFF_FFFF))
        return (z > 0 ? 1 : e) / (1 + e)
    }

    /// softplus' recovered from h = softplus(z): 1 - e^(-h), with its Taylor series below 0.35,
    /// where the subtraction would cancel.
    @inline(__always) static func softplusSlope(fromValue h: Float) -> Float {
        var q: Float = 1.0 / 40320.0
        q = q * -h + 1.0 / 5040.0
        q = q * -h + 1.0 / 720.0
        q = q * -h + 1.0 / 120.0
        q = q * -h + 1.0 / 24.0
        q = q * -h + 1.0 / 6.0
        q = q * -h + 1.0 / 2.0
        let small = h - h * h * q
        let large = 1 - expNonPositive(-h)
        return h < 0.35 ? small : large
    }
}
