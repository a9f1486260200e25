/// The version of the science a cell computes: data, initialisation, trainers and metrics.
/// Bump it whenever a change could alter any number of a result, so old and new never mix.
/// 4: the Lipschitz ascent runs in float32 (certified in float64), so lower bounds change.
/// 5: every (n, d, seed) has a dataset of its own (`CellData.dataSeed`); each ascent row draws
/// from a random stream of its own, free and tangential rows alternate, rows keep their direction
/// until their point moves, and a cell's threads split its search.
public let scienceVersion = 5

/// What a cell measured, keyed as the metrics table of docs/science.md. A metric that does not
/// exist for the cell (e.g. everything about the network after divergence) is nil, written as JSON
/// null.
public struct CellMetrics: Sendable, Equatable {
    /// Trained parameters: k (d + 2) + 1, or k + 1 for random features.
    public var p: Int
    /// Mean squared error on the training points.
    public var trainMSE: Double?
    /// The labels' noise level: 1 for random labels, 4 eta (1 - eta) for labels flipped at rate eta.
    public var noiseLevel: Double
    /// How far below the noise level the network fits: noise_level - train_mse.
    public var eps: Double?
    /// The share of training points with sign(f(x_i)) = y_i.
    public var fitFraction: Double?
    /// Mean squared error on fresh points of the same distribution.
    public var testMSE: Double?
    /// A certified lower bound of the Lipschitz constant on R^d (gradients, quotients, rays).
    public var lipLower: Double?
    /// A certified upper bound of the Lipschitz constant on R^d: the smallest of the three below.
    public var lipUpper: Double?
    /// A certified lower bound of the constant on the data's support: the constant the law bounds.
    public var lipSupportLower: Double?
    /// The mean input-gradient norm over fresh points (typical, not worst-case, sensitivity).
    public var gradMean: Double?
    /// sqrt(n d / p): the law's bound divided by eps.
    public var lawScale: Double
    /// lip_support_lower / (eps law_scale), when eps > 0: the constant in units of the law's bound
    /// (taken with constant 1; the theorem's is far below 1).
    public var lawRatio: Double?
    /// Training steps taken (smoothing steps included).
    public var steps: Int
    /// Why training stopped.
    public var stopReason: StopReason
    /// Seconds spent training.
    public var trainSeconds: Double
    /// Seconds spent on the Lipschitz bounds and baselines.
    public var lipSeconds: Double
    /// Training flops counted as the two GEMMs of a step, 4 n d k each.
    public var flops: Double
    /// flops / train_seconds, in GFLOP/s.
    public var gflops: Double
    /// The science version that computed the cell (`scienceVersion`).
    public var scienceVersion: Int
    /// How the network was initialised (provenance; JSON key `init`).
    public var initialisation: String
    /// The host that ran the cell.
    public var host: String
    /// OpenBLAS's configuration string as the cell ran it.
    public var blas: String
    /// OpenBLAS threads the cell ran with.
    public var blasThreads: Int?
    /// The OpenBLAS kernels the cell ran with ("SkylakeX", "Prescott", ...; `BLAS.core`). Not part
    /// of the cell's key: the same cell on another kernel differs only by rounding.
    public var blasCore: String?
    /// The cell's estimated peak memory (`CellParameters.estimatedPeakMemory`), in bytes.
    public var memoryEstimateBytes: Int?
    /// The peak resident memory of the process that ran the cell, in bytes, where it was measured
    /// (cell runners measure it; an in-process run cannot tell its cell's share).
    public var peakRSSBytes: Int?
    /// The training step the attempt that gave this result resumed from (its checkpoint's), where
    /// it resumed; absent for a cell computed in one go. Provenance, like the timings: a resumed
    /// cell's other metrics are those of an uninterrupted run.
    public var resumedFromStep: Int?
    /// The three certified upper bounds whose smallest is `lipUpper`: ||W||_op ||a||,
    /// sum_j |a_j| ||w_j|| and the centred bound (science version 2 on).
    public var lipUpperProduct: Double?
    /// sum_j |a_j| ||w_j|| (see `lipUpperProduct`).
    public var lipUpperPath: Double?
    /// The centred bound (see `lipUpperProduct`; docs/science.md, "The bounds").
    public var lipUpperCentred: Double?
    /// Baselines (science version 2 on): the support lower bound of the initial network, by the
    /// same search, and the interpolation floor of the training data (`InterpolationFloor`).
    public var lipInitSupportLower: Double?
    /// The interpolation floor of the training data (see `lipInitSupportLower`): no exact
    /// interpolant of the labels has a smaller constant on the support.
    public var interpFloor: Double?
    /// The trained network's own floor (science version 5 on): max over training pairs of
    /// |f(x_i) - f(x_j)| / dist(x_i, x_j), measured as `interpFloor` is. A certified lower bound of
    /// its constant on the support, and what a network that fits only partly is compared with:
    /// the interpolation floor speaks of exact interpolants only.
    public var fitFloor: Double?
    /// `smooth_after_fit`'s smoothing steps, and whether its last iterate still fitted
    /// (`SmoothingUnderFit`); absent for other trainers.
    public var smoothingSteps: Int?
    /// Whether `smooth_after_fit` ended on an iterate with train_mse <= target_mse (see
    /// `smoothingSteps`).
    public var fitHeld: Bool?

    /// Metrics with every field given.
    public init(
        p: Int,
        trainMSE: Double?,
        noiseLevel: Double,
        eps: Double?,
        fitFraction: Double?,
        testMSE: Double?,
        lipLower: Double?,
        lipUpper: Double?,
        lipSupportLower: Double?,
        gradMean: Double?,
        lawScale: Double,
        lawRatio: Double?,
        steps: Int,
        stopReason: StopReason,
        trainSeconds: Double,
        lipSeconds: Double,
        flops: Double,
        gflops: Double,
        scienceVersion: Int,
        initialisation: String,
        host: String,
        blas: String
    ) {
        self.p = p
        self.trainMSE = trainMSE
        self.noiseLevel = noiseLevel
        self.eps = eps
        self.fitFraction = fitFraction
        self.testMSE = testMSE
        self.lipLower = lipLower
        self.lipUpper = lipUpper
        self.lipSupportLower = lipSupportLower
        self.gradMean = gradMean
        self.lawScale = lawScale
        self.lawRatio = lawRatio
        self.steps = steps
        self.stopReason = stopReason
        self.trainSeconds = trainSeconds
        self.lipSeconds = lipSeconds
        self.flops = flops
        self.gflops = gflops
        self.scienceVersion = scienceVersion
        self.initialisation = initialisation
        self.host = host
        self.blas = blas
    }

    /// The metrics with wall-clock figures and machine provenance cleared, for comparing runs.
    public var withoutTimings: CellMetrics {
        var copy = self
        copy.trainSeconds = 0
        copy.lipSeconds = 0
        copy.gflops = 0
        copy.host = ""
        copy.blas = ""
        copy.blasThreads = nil
        copy.blasCore = nil
        copy.peakRSSBytes = nil
        copy.resumedFromStep = nil
        return copy
    }
}

/// One cell's parameters and metrics, encoded as one flat JSON object.
public struct CellResult: Sendable, Equatable, Codable {
    /// The resolved parameters.
    public var parameters: CellParameters
    /// What was measured.
    public var metrics: CellMetrics

    /// Combines parameters and metrics.
    public init(parameters: CellParameters, metrics: CellMetrics) {
        self.parameters = parameters
        self.metrics = metrics
    }

    enum Key: String, CodingKey {
        case p, eps, steps, flops, gflops, host, blas
        case trainMSE = "train_mse"
        case noiseLevel = "noise_level"
        case fitFraction = "fit_fraction"
        case testMSE = "test_mse"
        case lipLower = "lip_lower"
        case lipUpper = "lip_upper"
        case lipSupportLower = "lip_support_lower"
        case gradMean = "grad_mean"
        case lawScale = "law_scale"
        case lawRatio = "law_ratio"
        case stopReason = "stop_reason"
        case blasThreads = "blas_threads"
        case blasCore = "blas_core"
        case memoryEstimateBytes = "memory_estimate_bytes"
        case peakRSSBytes = "peak_rss_bytes"
        case resumedFromStep = "resumed_from_step"
        case lipUpperProduct = "lip_upper_product"
        case lipUpperPath = "lip_upper_path"
        case lipUpperCentred = "lip_upper_centred"
        case lipInitSupportLower = "lip_init_support_lower"
        case interpFloor = "interp_floor"
        case fitFloor = "fit_floor"
        case smoothingSteps = "smoothing_steps"
        case fitHeld = "fit_held"
        case trainSeconds = "train_seconds"
        case lipSeconds = "lip_seconds"
        case scienceVersion = "science_version"
        case initialisation = "init"
    }

    /// Writes the flat JSON object: the resolved parameters and the metrics side by side.
    public func encode(to encoder: any Encoder) throws {
        try parameters.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        let m = metrics
        func put(_ value: Double?, _ key: Key) throws {
            // JSON has no NaN or infinity: a non-finite figure is reported as null, never garbage.
            try c.encode(value.flatMap { $0.isFinite ? $0 : nil }, forKey: key)
        }
        try c.encode(m.p, forKey: .p)
        try put(m.trainMSE, .trainMSE)
        try put(m.noiseLevel, .noiseLevel)
        try put(m.eps, .eps)
        try put(m.fitFraction, .fitFraction)
        try put(m.testMSE, .testMSE)
        try put(m.lipLower, .lipLower)
        try put(m.lipUpper, .lipUpper)
        try put(m.lipSupportLower, .lipSupportLower)
        try put(m.gradMean, .gradMean)
        try put(m.lawScale, .lawScale)
        try put(m.lawRatio, .lawRatio)
        try c.encode(m.steps, forKey: .steps)
        try c.encode(m.stopReason, forKey: .stopReason)
        try put(m.trainSeconds, .trainSeconds)
        try put(m.lipSeconds, .lipSeconds)
        try put(m.flops, .flops)
        try put(m.gflops, .gflops)
        try c.encode(m.scienceVersion, forKey: .scienceVersion)
        try c.encode(m.initialisation, forKey: .initialisation)
        try c.encode(m.host, forKey: .host)
        try c.encode(m.blas, forKey: .blas)
        // Absent, not null, in results of versions that did not record them.
        try c.encodeIfPresent(m.blasThreads, forKey: .blasThreads)
        try c.encodeIfPresent(m.blasCore, forKey: .blasCore)
        try c.encodeIfPresent(m.memoryEstimateBytes, forKey: .memoryEstimateBytes)
        try c.encodeIfPresent(m.peakRSSBytes, forKey: .peakRSSBytes)
        try c.encodeIfPresent(m.resumedFromStep, forKey: .resumedFromStep)
        if m.scienceVersion >= 2 {
            try put(m.lipUpperProduct, .lipUpperProduct)
            try put(m.lipUpperPath, .lipUpperPath)
            try put(m.lipUpperCentred, .lipUpperCentred)
            try put(m.lipInitSupportLower, .lipInitSupportLower)
            try put(m.interpFloor, .interpFloor)
        }
        if m.scienceVersion >= 5 { try put(m.fitFloor, .fitFloor) }
        try c.encodeIfPresent(m.smoothingSteps, forKey: .smoothingSteps)
        try c.encodeIfPresent(m.fitHeld, forKey: .fitHeld)
    }

    /// Reads the flat JSON object `encode(to:)` writes; metrics a result lacks are nil.
    public init(from decoder: any Decoder) throws {
        parameters = try CellParameters(from: decoder)
        let c = try decoder.container(keyedBy: Key.self)
        metrics = CellMetrics(
            p: try c.decode(Int.self, forKey: .p),
            trainMSE: try c.decodeIfPresent(Double.self, forKey: .trainMSE),
            noiseLevel: try c.decode(Double.self, forKey: .noiseLevel),
            eps: try c.decodeIfPresent(Double.self, forKey: .eps),
            fitFraction: try c.decodeIfPresent(Double.self, forKey: .fitFraction),
            testMSE: try c.decodeIfPresent(Double.self, forKey: .testMSE),
            lipLower: try c.decodeIfPresent(Double.self, forKey: .lipLower),
            lipUpper: try c.decodeIfPresent(Double.self, forKey: .lipUpper),
            lipSupportLower: try c.decodeIfPresent(Double.self, forKey: .lipSupportLower),
            gradMean: try c.decodeIfPresent(Double.self, forKey: .gradMean),
            lawScale: try c.decode(Double.self, forKey: .lawScale),
            lawRatio: try c.decodeIfPresent(Double.self, forKey: .lawRatio),
            steps: try c.decode(Int.self, forKey: .steps),
            stopReason: try c.decode(StopReason.self, forKey: .stopReason),
            trainSeconds: try c.decodeIfPresent(Double.self, forKey: .trainSeconds) ?? 0,
            lipSeconds: try c.decodeIfPresent(Double.self, forKey: .lipSeconds) ?? 0,
            flops: try c.decodeIfPresent(Double.self, forKey: .flops) ?? 0,
            gflops: try c.decodeIfPresent(Double.self, forKey: .gflops) ?? 0,
            scienceVersion: try c.decode(Int.self, forKey: .scienceVersion),
            initialisation: try c.decode(String.self, forKey: .initialisation),
            host: try c.decode(String.self, forKey: .host),
            blas: try c.decode(String.self, forKey: .blas)
        )
        metrics.blasThreads = try c.decodeIfPresent(Int.self, forKey: .blasThreads)
        metrics.blasCore = try c.decodeIfPresent(String.self, forKey: .blasCore)
        metrics.memoryEstimateBytes = try c.decodeIfPresent(Int.self, forKey: .memoryEstimateBytes)
        metrics.peakRSSBytes = try c.decodeIfPresent(Int.self, forKey: .peakRSSBytes)
        metrics.resumedFromStep = try c.decodeIfPresent(Int.self, forKey: .resumedFromStep)
        metrics.lipUpperProduct = try c.decodeIfPresent(Double.self, forKey: .lipUpperProduct)
        metrics.lipUpperPath = try c.decodeIfPresent(Double.self, forKey: .lipUpperPath)
        metrics.lipUpperCentred = try c.decodeIfPresent(Double.self, forKey: .lipUpperCentred)
        metrics.lipInitSupportLower = try c.decodeIfPresent(Double.self, forKey: .lipInitSupportLower)
        metrics.interpFloor = try c.decodeIfPresent(Double.self, forKey: .interpFloor)
        metrics.fitFloor = try c.decodeIfPresent(Double.self, forKey: .fitFloor)
        metrics.smoothingSteps = try c.decodeIfPresent(Int.self, forKey: .smoothingSteps)
        metrics.fitHeld = try c.decodeIfPresent(Bool.self, forKey: .fitHeld)
    }
}
