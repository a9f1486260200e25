public import Diagnostics

/// Where a cell's inputs come from.
public enum DataKind: String, Codable, Sendable, CaseIterable {
    /// Uniform on the unit sphere S^{d-1}.
    case sphere
    /// N(0, I_d / d).
    case gaussian
    /// Uniform on {-1/sqrt(d), +1/sqrt(d)}^d.
    case hypercube
    /// Rows of a CSV or IDX file, each scaled to unit norm.
    case file
}

/// How a cell's labels are made.
public enum LabelKind: String, Codable, Sendable, CaseIterable {
    /// y uniform on {-1, +1}, independent of x (noise level 1).
    case random
    /// y = sign(<v, x>) flipped with probability eta (noise level 4 eta (1 - eta)).
    case teacher
    /// The data file's two classes mapped to -1 and +1, flipped with probability eta.
    case file
}

/// The hidden layer's activation; all are 1-Lipschitz.
public enum ActivationKind: String, Codable, Sendable, CaseIterable {
    case relu
    case tanh
    case softplus
}

/// How the network is trained.
public enum TrainerKind: String, Codable, Sendable, CaseIterable {
    /// Full-batch Adam on the mean squared error.
    case adam
    /// Full-batch gradient descent on the mean squared error.
    case gd
    /// Hidden layer frozen at initialisation; output layer by minimum-norm least squares.
    case randomFeatures = "random_features"
    /// Not trained: a ReLU network built to interpolate unit-norm data with one bump per point
    /// (`Construction`).
    case construction
}

/// Every parameter of one cell of a sweep. Defaults are filled in by `resolved()`, so that two
/// spellings of the same cell resolve to the same values (and, later, the same cell key).
public struct CellParameters: Codable, Sendable, Hashable {
    /// Number of training points.
    public var n: Int
    /// Input dimension (for file data: the number of features, checked against the file).
    public var d: Int
    /// Number of hidden neurons k.
    public var width: Int
    /// Seed of every random stream of the cell.
    public var seed: Int
    /// Input distribution.
    public var data: DataKind
    /// For `file` data: a CSV file, or an IDX images file (MNIST format).
    public var dataFile: String?
    /// For IDX data: the IDX labels file.
    public var labelFile: String?
    /// For `file` data: the two classes kept, mapped to -1 and +1 in this order.
    public var classes: [String]?
    /// For CSV data: the zero-based column holding the class (default: the last one).
    public var labelColumn: Int?
    /// How labels are made (default `random`, or `file` for file data).
    public var labels: LabelKind?
    /// Label flip probability for `teacher` and `file` labels.
    public var eta: Double
    /// Hidden activation.
    public var activation: ActivationKind
    /// Training method.
    public var trainer: TrainerKind
    /// Learning rate (default 0.01 for adam, 0.1 for gd; unused by random features).
    public var lr: Double?
    /// Step budget of the iterative trainers.
    public var maxSteps: Int
    /// Training stops once the training MSE is at or below this.
    public var targetMSE: Double
    /// Number of fresh test points (synthetic data) or the most held-out rows used (file data).
    public var nTest: Int
    /// L2 penalty on W and a (adam: decoupled, as AdamW; gd: added to the gradient); nil is none.
    public var weightDecay: Double?
    /// lambda of the gradient penalty lambda * mean_i ||grad_x f(x_i)||^2 (the tangential part
    /// for sphere and file data); nil is none.
    public var gradPenalty: Double?
    /// Multiplies the output layer's initialisation (small: mean-field regime; large: lazy); nil is 1.
    public var initScale: Double?
    /// Steps after reaching target_mse with the regulariser still on, stopping early only if the
    /// fit rises above target_mse; nil is none.
    public var extraSteps: Int?
    /// Steps of smoothing under the fit once target_mse is reached (and any extra_steps taken):
    /// the Lipschitz penalty on the training points and off-data points is minimised while
    /// train_mse stays at or below target_mse (`SmoothingUnderFit`); nil is none.
    public var smoothAfterFit: Int?

    /// A cell with the given size and every other parameter at its default.
    public init(
        n: Int,
        d: Int,
        width: Int,
        seed: Int = 0,
        data: DataKind = .sphere,
        dataFile: String? = nil,
        labelFile: String? = nil,
        classes: [String]? = nil,
        labelColumn: Int? = nil,
        labels: LabelKind? = nil,
        eta: Double = 0,
        activation: ActivationKind = .relu,
        trainer: TrainerKind = .adam,
        lr: Double? = nil,
        maxSteps: Int = CellParameters.defaultMaxSteps,
        targetMSE: Double = CellParameters.defaultTargetMSE,
        nTest: Int = CellParameters.defaultTestPoints
    ) {
        self.n = n
        self.d = d
        self.width = width
        self.seed = seed
        self.data = data
        self.dataFile = dataFile
        self.labelFile = labelFile
        self.classes = classes
        self.labelColumn = labelColumn
        self.labels = labels
        self.eta = eta
        self.activation = activation
        self.trainer = trainer
        self.lr = lr
        self.maxSteps = maxSteps
        self.targetMSE = targetMSE
        self.nTest = nTest
    }

    public static let defaultMaxSteps = 5000
    public static let defaultTargetMSE = 1e-3
    public static let defaultTestPoints = 1000

    enum CodingKeys: String, CodingKey {
        case n, d, width, seed, data, classes, labels, eta, activation, trainer, lr
        case dataFile = "data_file"
        case labelFile = "label_file"
        case labelColumn = "label_column"
        case maxSteps = "max_steps"
        case targetMSE = "target_mse"
        case nTest = "n_test"
        case weightDecay = "weight_decay"
        case gradPenalty = "grad_penalty"
        case initScale = "init_scale"
        case extraSteps = "extra_steps"
        case smoothAfterFit = "smooth_after_fit"
    }

    /// The label scheme in force: explicit, or the default for the data kind.
    public var resolvedLabels: LabelKind { labels ?? (data == .file ? .file : .random) }

    /// The learning rate in force.
    public var resolvedLearningRate: Double {
        if let lr { return lr }
        switch trainer {
        case .adam: return 0.01
        case .gd: return 0.1
        case .randomFeatures, .construction: return 0
        }
    }

    /// Whether the trainer takes optimisation steps (and so a learning rate and regularisers).
    public var isIterative: Bool { trainer == .adam || trainer == .gd }

    /// The parameters with every default made explicit. The training options' neutral values
    /// (no decay, no penalty, scale 1, no extra steps) resolve to absent, so that cells which do
    /// not use them keep the keys they had before the options existed.
    public func resolved() -> CellParameters {
        var copy = self
        copy.labels = resolvedLabels
        copy.lr = isIterative ? resolvedLearningRate : nil
        if copy.weightDecay == 0 { copy.weightDecay = nil }
        if copy.gradPenalty == 0 { copy.gradPenalty = nil }
        if copy.initScale == 1 { copy.initScale = nil }
        if copy.extraSteps == 0 { copy.extraSteps = nil }
        if copy.smoothAfterFit == 0 { copy.smoothAfterFit = nil }
        return copy
    }

    /// The output layer's initialisation scale in force.
    public var resolvedInitScale: Double { initScale ?? 1 }

    /// Number of parameters, the law's p: k (d + 2) + 1, or k + 1 for random features (the
    /// hidden layer is not trained); a construction's network has k (d + 2) + 1 as well.
    public var parameterCount: Int {
        trainer == .randomFeatures ? width + 1 : width * (d + 2) + 1
    }

    /// Checks every range and combination; throws a message naming the parameter and the fix.
    public func validate() throws(IsosweepError) {
        func fail(_ message: String) -> IsosweepError { IsosweepError(.invalidParameter, message) }
        guard n >= 1 else { throw fail("n must be a positive number of training points (got \(n))") }
        guard d >= 1 else { throw fail("d must be a positive input dimension (got \(d))") }
        guard width >= 1 else { throw fail("width must be a positive number of hidden neurons (got \(width))") }
        guard seed >= 0 else { throw fail("seed must be non-negative (got \(seed))") }
        guard eta >= 0 && eta <= 0.5 else { throw fail("eta is a label flip probability in [0, 0.5] (got \(eta))") }
        guard maxSteps >= 1 else { throw fail("max_steps must be at least 1 (got \(maxSteps))") }
        guard targetMSE >= 0 && targetMSE.isFinite else {
            throw fail("target_mse must be a finite number >= 0 (got \(targetMSE))")
        }
        guard nTest >= 1 else { throw fail("n_test must be at least 1 (got \(nTest))") }
        if let lr, !(lr > 0 && lr.isFinite) { throw fail("lr must be a positive finite learning rate (got \(lr))") }
        try validateTrainingOptions(fail)
        // The n x width activation matrix must fit in memory: refuse absurd sizes up front.
        let (cells, overflow) = n.multipliedReportingOverflow(by: width)
        guard !overflow && cells <= 4_000_000_000 else {
            throw fail("n x width = \(n) x \(width) is too large for one cell: the activations would not fit in memory")
        }
        if data == .file {
            guard let dataFile, !dataFile.isEmpty else {
                throw fail("data: file needs data_file (a CSV file, or an IDX images file with label_file)")
            }
            if resolvedLabels == .file {
                guard let classes, classes.count == 2, classes[0] != classes[1] else {
                    throw fail("data: file needs classes: two distinct class labels of the file, e.g. [3, 8]")
                }
            }
        } else {
            if dataFile != nil || labelFile != nil {
                throw fail("data_file and label_file are only used with data: file (data is \(data.rawValue))")
            }
            if resolvedLabels == .file {
                throw fail("labels: file needs data: file; use random or teacher labels with \(data.rawValue) data")
            }
        }
        if resolvedLabels == .random && eta != 0 {
            throw fail("eta applies to teacher and file labels; random labels are already pure noise (drop eta)")
        }
    }
}

extension CellParameters {
    /// The regularisers and the construction's needs.
    fileprivate func validateTrainingOptions(_ fail: (String) -> IsosweepError) throws(IsosweepError) {
        if let weightDecay, !(weightDecay >= 0 && weightDecay.isFinite) {
            throw fail("weight_decay must be a finite number >= 0 (got \(weightDecay))")
        }
        if let gradPenalty, !(gradPenalty >= 0 && gradPenalty.isFinite) {
            throw fail("grad_penalty must be a finite number >= 0 (got \(gradPenalty))")
        }
        if let initScale, !(initScale > 0 && initScale.isFinite) {
            throw fail("init_scale must be a positive finite number (got \(initScale))")
        }
        if let extraSteps, extraSteps < 0 { throw fail("extra_steps must be >= 0 (got \(extraSteps))") }
        if let smoothAfterFit, smoothAfterFit < 0 {
            throw fail("smooth_after_fit must be >= 0 (got \(smoothAfterFit))")
        }
        let options = resolved()
        if !isIterative {
            let set = [
                ("weight_decay", options.weightDecay != nil), ("grad_penalty", options.gradPenalty != nil),
                ("extra_steps", options.extraSteps != nil), ("init_scale", options.initScale != nil),
                ("smooth_after_fit", options.smoothAfterFit != nil),
            ].filter(\.1).map(\.0)
            if !set.isEmpty {
                throw fail(
                    "\(set.joined(separator: ", ")) apply to the adam and gd trainers; \(trainer.rawValue) takes no steps: drop \(set.count == 1 ? "it" : "them")"
                )
            }
        }
        if trainer == .construction {
            guard activation == .relu else {
                throw fail(
                    "trainer construction builds a ReLU network: set activation relu (got \(activation.rawValue))"
                )
            }
            guard width >= n else {
                throw fail(
                    "trainer construction needs one unit per training point: width >= n (got width \(width), n \(n))"
                )
            }
            guard data != .gaussian else {
                throw fail(
                    "trainer construction places its bumps on the unit sphere: use sphere, hypercube or file data (gaussian points are not unit vectors)"
                )
            }
        }
    }
}
