import ArgumentParser
import CommandSupport
import Diagnostics
import TrainingCore

/// `isosweep lipschitz`: the bounds of a saved network.
struct Lipschitz: ParsableCommand, RunsBLAS {
    static let configuration = CommandConfiguration(
        abstract: "Print the Lipschitz bounds of a network saved as .safetensors (by isosweep, PyTorch or numpy).",
        discussion: """
            The file holds W [k, d], b [k], a [k], c [1] (or a PyTorch Sequential(Linear, act, Linear) \
            state dict). Training inputs X [n, d] in the file join the probe set.
            """
    )

    @Argument(help: "A .safetensors file.") var file: String
    @Option(
        help: "Input distribution of the fresh probes: sphere, gaussian, hypercube (default: the file's, else sphere)."
    )
    var data: DataKind?
    @Option(help: "Activation, if the file's metadata does not say.") var activation: ActivationKind?
    @Option(help: "Seed of the probes (default: the file's, else 0).") var seed: Int?
    @OptionGroup var search: SearchOptions
    @Option(help: "Threads (OpenBLAS's, and the search split as a cell of that many threads splits it).")
    var threads: Int = 1
    @Flag(
        help:
            "Also compute the exact constant on R^d (ReLU networks with d <= 8 and width <= 40), and the lower bound along rays alone."
    )
    var exact = false

    func validate() throws {
        if data == .file {
            throw ValidationError(
                "--data file is not a distribution to draw probes from: use sphere, gaussian or hypercube"
            )
        }
        if let seed, seed < 0 { throw ValidationError("--seed must be non-negative") }
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256") }
    }

    func run() throws {
        BLAS.setThreads(threads)
        let saved = try SavedNetwork.load(path: file, activation: activation)
        let d = saved.network.inputDimension
        let kind = data ?? saved.metadata["data"].flatMap(DataKind.init(rawValue:)) ?? .sphere
        let distribution: InputDistribution
        switch kind {
        case .sphere: distribution = .sphere
        case .gaussian: distribution = .gaussian
        case .hypercube: distribution = .hypercube
        case .file:
            guard let inputs = saved.inputs else {
                throw IsosweepError(
                    .invalidParameter,
                    "\(file) was trained on file data but holds no X: pass --data sphere|gaussian|hypercube"
                )
            }
            distribution = .empirical(inputs)
        }
        let probeSeed = seed ?? saved.metadata["seed"].flatMap(Int.init) ?? 0
        var options = search.lipschitz
        options.threads = threads  // as `Cell.run` passes a cell's
        // Refused before the search when the network is out of reach.
        let exactResult = exact ? try ExactLipschitz.constant(of: saved.network) : nil
        let rays = exact ? TrainingCore.Lipschitz.rayLowerBound(saved.network, seed: UInt64(probeSeed)).value : nil
        let bounds = try TrainingCore.Lipschitz.bounds(
            of: saved.network,
            trainingInputs: saved.inputs,
            distribution: distribution,
            seed: UInt64(probeSeed),
            options: options
        )
        try Output.json(
            LipschitzReport(
                bounds: bounds,
                width: saved.network.width,
                d: d,
                activation: saved.network.activation,
                data: kind,
                support: distribution.support,
                seed: probeSeed,
                trainingProbes: saved.inputs?.rows ?? 0,
                exact: exactResult,
                rayLower: rays,
                interpolationFloor: saved.inputs.flatMap { inputs in
                    saved.labels.map { labels in
                        InterpolationFloor.value(
                            inputs: inputs,
                            labels: labels,
                            metric: distribution.support == .sphere ? .geodesic : .euclidean
                        )
                    }
                },
                fitFloor: saved.inputs.map { inputs in
                    InterpolationFloor.value(
                        inputs: inputs,
                        labels: saved.network.outputs(inputs),
                        metric: distribution.support == .sphere ? .geodesic : .euclidean
                    )
                }
            )
        )
    }
}

/// The JSON printed by `isosweep lipschitz`.
struct LipschitzReport: Encodable {
    var bounds: LipschitzBounds
    var width: Int
    var d: Int
    var activation: ActivationKind
    var data: DataKind
    /// Where `lip_support_lower` was measured.
    var support: Support
    var seed: Int
    var trainingProbes: Int
    /// With --exact: the exact constant and how the search went, and the rays' bound alone.
    var exact: ExactLipschitz.Result?
    var rayLower: Double?
    /// With saved training data: its interpolation floor on the support, and the network's own
    /// floor there (`CellMetrics.fitFloor`).
    var interpolationFloor: Double?
    var fitFloor: Double?

    enum CodingKeys: String, CodingKey {
        case width, d, activation, data, seed
        case trainingProbes = "training_probes"
        case exact = "lip_exact"
        case exactPoint = "lip_exact_point"
        case exactRegions = "exact_regions"
        case exactLinearPrograms = "exact_linear_programs"
        case rayLower = "lip_lower_rays"
        case interpolationFloor = "interp_floor"
        case fitFloor = "fit_floor"
        case support
    }

    func encode(to encoder: any Encoder) throws {
        try bounds.encode(to: encoder)
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(width, forKey: .width)
        try c.encode(d, forKey: .d)
        try c.encode(activation, forKey: .activation)
        try c.encode(data, forKey: .data)
        try c.encode(support.rawValue, forKey: .support)
        try c.encode(seed, forKey: .seed)
        try c.encode(trainingProbes, forKey: .trainingProbes)
        if let exact {
            try c.encode(exact.value, forKey: .exact)
            try c.encode(exact.point, forKey: .exactPoint)
            try c.encode(exact.regions, forKey: .exactRegions)
            try c.encode(exact.linearPrograms, forKey: .exactLinearPrograms)
        }
        try c.encodeIfPresent(rayLower, forKey: .rayLower)
        if let interpolationFloor, interpolationFloor.isFinite {
            try c.encode(interpolationFloor, forKey: .interpolationFloor)
        }
        if let fitFloor, fitFloor.isFinite { try c.encode(fitFloor, forKey: .fitFloor) }
    }
}
