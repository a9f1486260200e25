import RealModule

/// The scalar functions of one activation, as static members so that generic loops specialise
/// and inline them (a switch inside the inner loop would stop vectorisation).
protocol ActivationKernel {
    /// psi(z).
    static func value<T: BLASScalar>(_ z: T) -> T
    /// psi'(z) recovered from h = psi(z): the backward pass keeps only h.
    static func derivative<T: BLASScalar>(fromValue h: T) -> T
    /// psi'(z).
    static func derivative<T: BLASScalar>(_ z: T) -> T
    /// The true psi''(z) recovered from h = psi(z), for the gradient penalty's parameter gradient
    /// (relu: 0, its second derivative almost everywhere).
    static func secondDerivative<T: BLASScalar>(fromValue h: T) -> T
    /// Whether psi'' is zero almost everywhere (the penalty's gradient then skips its terms).
    static var isPiecewiseLinear: Bool { get }
    /// psi and psi' (from the value) as the training step computes them: in float32 the
    /// vectorisable `FastMath` versions where libm would be called, else the exact ones.
    static func trainingValue<T: BLASScalar>(_ z: T) -> T
    static func trainingDerivative<T: BLASScalar>(fromValue h: T) -> T
    /// Whether the step computes psi' with psi, from z, and keeps it for the row (softplus in
    /// float32: its slope from the value would need a second exponential).
    static func slopeWithValue<T: BLASScalar>(_: T.Type) -> Bool
    /// psi and psi' at z, when `slopeWithValue`.
    static func trainingValueAndSlope<T: BLASScalar>(_ z: T) -> (value: T, slope: T)
}

extension ActivationKernel {
    @inline(__always) static func trainingValue<T: BLASScalar>(_ z: T) -> T { value(z) }
    @inline(__always) static func trainingDerivative<T: BLASScalar>(fromValue h: T) -> T { derivative(fromValue: h) }
    @inline(__always) static func slopeWithValue<T: BLASScalar>(_: T.Type) -> Bool { false }
    @inline(__always) static func trainingValueAndSlope<T: BLASScalar>(_ z: T) -> (value: T, slope: T) {
        let h = trainingValue(z)
        return (h, trainingDerivative(fromValue: h))
    }
}

enum ReLUKernel: ActivationKernel {
    /// Sharpness of the softplus whose curvature stands in for relu's when steering the gradient
    /// ascent (relu's own is zero almost everywhere; a direction, never a certificate: every bound
    /// is evaluated in float64 with the true gradient). `CKernels`' ascent passes take it.
    static let surrogateSharpness = 10.0

    /// max(z, 0) written without a branch, so the activation pass vectorises (exact: z + |z| = 2z or 0).
    @inline(__always) static func value<T: BLASScalar>(_ z: T) -> T { (z + abs(z)) * 0.5 }
    @inline(__always) static func derivative<T: BLASScalar>(fromValue h: T) -> T { h > 0 ? 1 : 0 }
    @inline(__always) static func derivative<T: BLASScalar>(_ z: T) -> T { z > 0 ? 1 : 0 }
    @inline(__always) static func secondDerivative<T: BLASScalar>(fromValue h: T) -> T { 0 }
    static var isPiecewiseLinear: Bool { true }
}

enum TanhKernel: ActivationKernel {
    @inline(__always) static func value<T: BLASScalar>(_ z: T) -> T { T.tanh(z) }
    @inline(__always) static func derivative<T: BLASScalar>(fromValue h: T) -> T { 1 - h * h }
    @inline(__always) static func secondDerivative<T: BLASScalar>(fromValue h: T) -> T { -2 * h * (1 - h * h) }
    @inline(__always) static func trainingValue<T: BLASScalar>(_ z: T) -> T {
        // Decided at specialisation: float32 training takes the vectorisable tanh.
        if T.self == Float.self { return unsafeBitCast(FastMath.tanh(unsafeBitCast(z, to: Float.self)), to: T.self) }
        return value(z)
    }
    static var isPiecewiseLinear: Bool { false }
    @inline(__always) static func derivative<T: BLASScalar>(_ z: T) -> T {
        let t = T.tanh(z)
        return 1 - t * t
    }
}

enum SoftplusKernel: ActivationKernel {
    /// log(1 + e^z), computed without overflow.
    @inline(__always) static func value<T: BLASScalar>(_ z: T) -> T {
        (z > 0 ? z : 0) + T.log(onePlus: T.exp(-abs(z)))
    }
    /// sigmoid(z) = 1 - exp(-softplus(z)).
    @inline(__always) static func derivative<T: BLASScalar>(fromValue h: T) -> T { -T.expMinusOne(-h) }
    @inline(__always) static func secondDerivative<T: BLASScalar>(fromValue h: T) -> T {
        let s = -T.expMinusOne(-h)
        return s * (1 - s)
    }
    @inline(__always) static func trainingValue<T: BLASScalar>(_ z: T) -> T {
        if T.self == Float.self {
            return unsafeBitCast(FastMath.softplus(unsafeBitCast(z, to: Float.self)), to: T.self)
        }
        return value(z)
    }
    @inline(__always) static func trainingDerivative<T: BLASScalar>(fromValue h: T) -> T {
        if T.self == Float.self {
            return unsafeBitCast(FastMath.softplusSlope(fromValue: unsafeBitCast(h, to: Float.self)), to: T.self)
        }
        return derivative(fromValue: h)
    }
    @inline(__always) static func slopeWithValue<T: BLASScalar>(_: T.Type) -> Bool { T.self == Float.self }
    @inline(__always) static func trainingValueAndSlope<T: BLASScalar>(_ z: T) -> (value: T, slope: T) {
        if T.self == Float.self {
            let (h, s) = FastMath.softplusAndSigmoid(unsafeBitCast(z, to: Float.self))
            return (unsafeBitCast(h, to: T.self), unsafeBitCast(s, to: T.self))
        }
        return (value(z), derivative(z))
    }
    static var isPiecewiseLinear: Bool { false }
    @inline(__always) static func derivative<T: BLASScalar>(_ z: T) -> T { sigmoid(z) }
    @inline(__always) static func sigmoid<T: BLASScalar>(_ z: T) -> T {
        z >= 0 ? 1 / (1 + T.exp(-z)) : T.exp(z) / (1 + T.exp(z))
    }
}

extension ActivationKind {
    /// psi(z), for code outside hot loops.
    public func value<T: BLASScalar>(_ z: T) -> T {
        switch self {
        case .relu: ReLUKernel.value(z)
        case .tanh: TanhKernel.value(z)
        case .softplus: SoftplusKernel.value(z)
        }
    }

    /// psi'(z), for code outside hot loops.
    public func derivative<T: BLASScalar>(_ z: T) -> T {
        switch self {
        case .relu: ReLUKernel.derivative(z)
        case .tanh: TanhKernel.derivative(z)
        case .softplus: SoftplusKernel.derivative(z)
        }
    }
}
