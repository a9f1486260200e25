public import Diagnostics
import Foundation

/// A cell parameter's value as sweep files and JSON spell it: a JSON number, string or list.
public enum ParameterValue: Sendable, Hashable, Codable, CustomStringConvertible {
    case int(Int)
    case double(Double)
    case string(String)
    case list([ParameterValue])

    /// The value as a whole number, if it is one.
    public var int: Int? { if case .int(let v) = self { v } else { nil } }
    /// The value as a number (whole numbers included).
    public var double: Double? {
        switch self {
        case .double(let v): v
        case .int(let v): Double(v)
        default: nil
        }
    }
    /// The value as a string, if it is one.
    public var string: String? { if case .string(let v) = self { v } else { nil } }
    /// The value as a list, if it is one.
    public var list: [ParameterValue]? { if case .list(let v) = self { v } else { nil } }

    public var description: String {
        switch self {
        case .int(let v): String(v)
        case .double(let v): String(v)
        case .string(let v): v
        case .list(let v): "[" + v.map(\.description).joined(separator: ", ") + "]"
        }
    }

    /// Plain JSON: `128`, `0.01`, `"relu"`, `["3", "8"]`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .int(let v): try container.encode(v)
        case .double(let v): try container.encode(v)
        case .string(let v): try container.encode(v)
        case .list(let v): try container.encode(v)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let v = try? container.decode(Int.self) {
            self = .int(v)
        } else if let v = try? container.decode(Double.self) {
            self = .double(v)
        } else if let v = try? container.decode(String.self) {
            self = .string(v)
        } else {
            self = .list(try container.decode([ParameterValue].self))
        }
    }
}

/// One parameter of a cell, declared once: sweep files validate against it, `isosweep train`
/// takes its help from it, and the table's columns and the report's series derive from it.
public struct CellParameter: Sendable {
    /// The type of value a parameter takes.
    public enum Kind: Sendable, Equatable {
        case int
        case number
        case text
        /// Two class labels of a data file.
        case pair
        case choice([String])

        /// A value of this kind from command-line text (`64`, `0.01`, `relu`, `3,8`), or nil.
        public func value(fromArgument text: String) -> ParameterValue? {
            switch self {
            case .int: return Int(text).map(ParameterValue.int)
            case .number: return Double(text).flatMap { $0.isFinite ? .double($0) : nil }
            case .text: return .string(text)
            case .choice(let options): return options.contains(text) ? .string(text) : nil
            case .pair:
                let labels = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                return labels.count == 2 ? .list(labels.map(ParameterValue.string)) : nil
            }
        }

        /// What a value of this kind looks like, for error messages.
        public var expected: String {
            switch self {
            case .int: "a whole number"
            case .number: "a number"
            case .text: "a string"
            case .pair: "two class labels, e.g. [3, 8] (on the command line: 3,8)"
            case .choice(let options): "one of \(options.joined(separator: ", "))"
            }
        }
    }

    /// The name in sweep files, JSON and tables (`isosweep train` spells it with dashes).
    public let name: String
    /// The type of value it takes.
    public let kind: Kind
    /// Whether every cell must give it (n, d and width).
    public let isRequired: Bool
    /// The default in words where it depends on other parameters (e.g. lr on the trainer).
    let defaultNote: String?
    /// One line of help.
    public let help: String
    /// The value in `parameters` (resolved defaults included), nil where it is not set.
    public let value: @Sendable (CellParameters) -> ParameterValue?
    /// Sets it in `parameters` from a value of its kind.
    let assign: @Sendable (inout CellParameters, ParameterValue) -> Void

    init(
        name: String,
        kind: Kind,
        isRequired: Bool,
        defaultNote: String? = nil,
        help: String,
        value: @escaping @Sendable (CellParameters) -> ParameterValue?,
        assign: @escaping @Sendable (inout CellParameters, ParameterValue) -> Void
    ) {
        self.name = name
        self.kind = kind
        self.isRequired = isRequired
        self.defaultNote = defaultNote
        self.help = help
        self.value = value
        self.assign = assign
    }

    /// Its default, in words: what a cell that does not set it has (`CellParameters`' own defaults).
    public var defaultDescription: String {
        if isRequired { return "required" }
        if let defaultNote { return defaultNote }
        return value(CellParameters(n: 1, d: 1, width: 1))?.description ?? "none"
    }

    /// The option of `isosweep train` that sets it, e.g. `--max-steps`.
    public var optionName: String { "--" + name.replacingOccurrences(of: "_", with: "-") }

    /// Sets this parameter in `parameters`; `value` must be of the parameter's kind.
    public func assign(_ value: ParameterValue, to parameters: inout CellParameters) {
        assign(&parameters, value)
    }
}

extension CellParameters {
    /// Every parameter of a cell, in the order tables show them.
    public static let catalogue: [CellParameter] = [
        CellParameter(
            name: "n",
            kind: .int,
            isRequired: true,
            help: "Number of training points.",
            value: { .int($0.n) },
            assign: { $0.n = $1.int ?? 0 }
        ),
        CellParameter(
            name: "d",
            kind: .int,
            isRequired: true,
            help: "Input dimension (for file data: the file's number of features).",
            value: { .int($0.d) },
            assign: { $0.d = $1.int ?? 0 }
        ),
        CellParameter(
            name: "width",
            kind: .int,
            isRequired: true,
            help: "Hidden width k.",
            value: { .int($0.width) },
            assign: { $0.width = $1.int ?? 0 }
        ),
        CellParameter(
            name: "seed",
            kind: .int,
            isRequired: false,
            help: "Seed of the cell's data, labels, initialisation and probes.",
            value: { .int($0.seed) },
            assign: { $0.seed = $1.int ?? 0 }
        ),
        CellParameter(
            name: "data",
            kind: .choice(DataKind.allCases.map(\.rawValue)),
            isRequired: false,
            help: "Inputs: \(DataKind.allCases.map(\.rawValue).joined(separator: ", ")).",
            value: { .string($0.data.rawValue) },
            assign: { $0.data = DataKind(rawValue: $1.string ?? "") ?? .sphere }
        ),
        CellParameter(
            name: "data_file",
            kind: .text,
            isRequired: false,
            help: "For file data: a CSV file, or an IDX images file (MNIST).",
            value: { $0.dataFile.map(ParameterValue.string) },
            assign: { $0.dataFile = $1.string }
        ),
        CellParameter(
            name: "label_file",
            kind: .text,
            isRequired: false,
            help: "For IDX data: the IDX labels file.",
            value: { $0.labelFile.map(ParameterValue.string) },
            assign: { $0.labelFile = $1.string }
        ),
        CellParameter(
            name: "classes",
            kind: .pair,
            isRequired: false,
            help: "For file data: the two classes kept, first -> -1, second -> +1 (on the command line: a,b).",
            value: { $0.classes.map { .list($0.map(ParameterValue.string)) } },
            assign: { $0.classes = $1.list?.compactMap(\.string) }
        ),
        CellParameter(
            name: "label_column",
            kind: .int,
            isRequired: false,
            defaultNote: "the last column",
            help: "For CSV data: the zero-based column holding the class.",
            value: { $0.labelColumn.map(ParameterValue.int) },
            assign: { $0.labelColumn = $1.int }
        ),
        CellParameter(
            name: "labels",
            kind: .choice(LabelKind.allCases.map(\.rawValue)),
            isRequired: false,
            defaultNote: "random (file for file data)",
            help:
                "Labels: \(LabelKind.allCases.map(\.rawValue).joined(separator: ", ")).",
            value: { .string($0.resolvedLabels.rawValue) },
            assign: { $0.labels = LabelKind(rawValue: $1.string ?? "") }
        ),
        CellParameter(
            name: "eta",
            kind: .number,
            isRequired: false,
            help: "Label flip probability for teacher and file labels.",
            value: { .double($0.eta) },
            assign: { $0.eta = $1.double ?? 0 }
        ),
        CellParameter(
            name: "activation",
            kind: .choice(ActivationKind.allCases.map(\.rawValue)),
            isRequired: false,
            help: "Activation: \(ActivationKind.allCases.map(\.rawValue).joined(separator: ", ")).",
            value: { .string($0.activation.rawValue) },
            assign: { $0.activation = ActivationKind(rawValue: $1.string ?? "") ?? .relu }
        ),
        CellParameter(
            name: "trainer",
            kind: .choice(TrainerKind.allCases.map(\.rawValue)),
            isRequired: false,
            help: "Trainer: \(TrainerKind.allCases.map(\.rawValue).joined(separator: ", ")).",
            value: { .string($0.trainer.rawValue) },
            assign: { $0.trainer = TrainerKind(rawValue: $1.string ?? "") ?? .adam }
        ),
        CellParameter(
            name: "lr",
            kind: .number,
            isRequired: false,
            defaultNote: "0.01 for adam, 0.1 for gd",
            help: "Learning rate (unused by random features).",
            value: { $0.lr.map(ParameterValue.double) },
            assign: { $0.lr = $1.double }
        ),
        CellParameter(
            name: "max_steps",
            kind: .int,
            isRequired: false,
            help: "Step budget of the iterative trainers.",
            value: { .int($0.maxSteps) },
            assign: { $0.maxSteps = $1.int ?? CellParameters.defaultMaxSteps }
        ),
        CellParameter(
            name: "target_mse",
            kind: .number,
            isRequired: false,
            help: "Training stops once the training MSE is at or below this.",
            value: { .double($0.targetMSE) },
            assign: { $0.targetMSE = $1.double ?? CellParameters.defaultTargetMSE }
        ),
        CellParameter(
            name: "weight_decay",
            kind: .number,
            isRequired: false,
            help: "L2 penalty on W and a (adam: decoupled, as AdamW; gd: in the gradient).",
            value: { .double($0.weightDecay ?? 0) },
            assign: { $0.weightDecay = $1.double }
        ),
        CellParameter(
            name: "grad_penalty",
            kind: .number,
            isRequired: false,
            help:
                "lambda of lambda * mean_i |grad_x f(x_i)|^2 added to the loss (tangential part for sphere and file data).",
            value: { .double($0.gradPenalty ?? 0) },
            assign: { $0.gradPenalty = $1.double }
        ),
        CellParameter(
            name: "init_scale",
            kind: .number,
            isRequired: false,
            help: "Multiplies the output layer's initialisation (small: mean-field regime, large: lazy).",
            value: { .double($0.initScale ?? 1) },
            assign: { $0.initScale = $1.double }
        ),
        CellParameter(
            name: "extra_steps",
            kind: .int,
            isRequired: false,
            help: "Steps after reaching target_mse with the regulariser on (ends early if the fit rises above it).",
            value: { .int($0.extraSteps ?? 0) },
            assign: { $0.extraSteps = $1.int }
        ),
        CellParameter(
            name: "smooth_after_fit",
            kind: .int,
            isRequired: false,
            help:
                "Steps that minimise the Lipschitz penalty (training and off-data points) once target_mse is reached, keeping train_mse <= target_mse; the smoothest fitting network is measured.",
            value: { .int($0.smoothAfterFit ?? 0) },
            assign: { $0.smoothAfterFit = $1.int }
        ),
        CellParameter(
            name: "n_test",
            kind: .int,
            isRequired: false,
            help: "Fresh test points (or the most held-out rows used, for file data).",
            value: { .int($0.nTest) },
            assign: { $0.nTest = $1.int ?? CellParameters.defaultTestPoints }
        ),
    ]

    /// The catalogue entry named `name` (as in sweep files), if there is one.
    public static func parameter(named name: String) -> CellParameter? {
        catalogue.first { $0.name == name }
    }

    /// A cell from named values of the catalogue's kinds; parameters not named keep their defaults.
    public init(values: [String: ParameterValue]) {
        self.init(n: 0, d: 0, width: 0)
        for parameter in Self.catalogue {
            if let value = values[parameter.name] { parameter.assign(value, to: &self) }
        }
    }
}

extension CellParameters {
    /// A cell from command-line options named after the catalogue (`--max-steps 300`,
    /// `--classes=3,8`), validated; an error names the option and what it expects.
    public init(arguments: [String]) throws(IsosweepError) {
        var values: [String: ParameterValue] = [:]
        var index = 0
        while index < arguments.count {
            var option = arguments[index]
            var text: String?
            if let equals = option.firstIndex(of: "="), option.hasPrefix("--") {
                text = String(option[option.index(after: equals)...])
                option = String(option[..<equals])
            }
            guard let parameter = Self.catalogue.first(where: { $0.optionName == option }) else {
                throw IsosweepError(
                    .invalidParameter,
                    "unknown option \(option)",
                    remedy: "a cell's parameters are \(Self.catalogue.map(\.optionName).joined(separator: ", "))"
                )
            }
            if text == nil {
                index += 1
                guard index < arguments.count else {
                    throw IsosweepError(.invalidParameter, "\(option) needs a value: \(parameter.kind.expected)")
                }
                text = arguments[index]
            }
            guard let text, let value = parameter.kind.value(fromArgument: text) else {
                throw IsosweepError(
                    .invalidParameter,
                    "\(option): expected \(parameter.kind.expected), got \(text ?? "")"
                )
            }
            guard values.updateValue(value, forKey: parameter.name) == nil else {
                throw IsosweepError(.invalidParameter, "\(option) is given twice")
            }
            index += 1
        }
        for parameter in Self.catalogue where parameter.isRequired && values[parameter.name] == nil {
            throw IsosweepError(.invalidParameter, "\(parameter.optionName) is required: \(parameter.help)")
        }
        self.init(values: values)
        try validate()
    }

    /// The catalogue as the command line's help: one line per option with its type and default.
    public static var argumentsHelp: String {
        catalogue.map { parameter in
            let type: String
            switch parameter.kind {
            case .int: type = "<int>"
            case .number: type = "<number>"
            case .text: type = "<path>"
            case .pair: type = "<a,b>"
            case .choice(let options): type = "<" + options.joined(separator: "|") + ">"
            }
            let fallback = parameter.isRequired ? "required" : "default: \(parameter.defaultDescription)"
            return "\(parameter.optionName) \(type)\n      \(parameter.help) (\(fallback))"
        }.joined(separator: "\n")
    }
}
