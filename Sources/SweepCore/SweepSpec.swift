public import Diagnostics
import Foundation
public import TrainingCore
import Yams

/// A sweep file: a grid over cell parameters in a subset of the Weights & Biases sweep format.
///
/// ```yaml
/// name: quick
/// method: grid
/// description: what it shows
/// max_attempts: 3            # optional: tries per cell before it is FAILED
/// parameters:
///   n:     {values: [64, 256]}
///   width: {values: [2, 8]}
///   d:     {value: 8}
/// ```
/// Every parameter is an axis (`values`) or fixed (`value`); n, d and width are required. The
/// parameters a file may set are `CellParameters.catalogue`. A sweep's identity is the set of its
/// cells, not its text: comments, key order and the description never change it.
///
/// `variants:` (isosweep's own) runs the grid once per entry, each a mapping of parameters whose
/// values override the grid's, so that settings that only make sense together share a file:
/// ```yaml
/// variants:
///   - {trainer: adam}
///   - {trainer: adam, grad_penalty: 0.01, extra_steps: 2000}
///   - {trainer: construction, width: 256}   # one width: the duplicates collapse
/// ```
public struct SweepSpec: Sendable, Equatable {
    /// A sweep file's `method:`: the two of Weights & Biases' methods isosweep runs.
    public enum Method: String, Sendable, Equatable, CaseIterable {
        /// Every combination of the parameters' values (with `variants:`, once per variant).
        case grid
        /// `run_cap` cells drawn from the parameters' distributions (`RandomSearch`).
        case random
    }

    /// The sweep's name.
    public var name: String
    /// How the cells are chosen: every combination, or drawn at random.
    public var method: Method
    /// What the sweep shows, in words.
    public var description: String?
    /// Tries per cell before it is FAILED (default 3).
    public var maxAttempts: Int?
    /// The parameters in file order.
    public var parameters: [Parameter]
    /// The file's text as the user wrote it, comments included.
    public var source: String
    /// What each cell may use (`resources:`): not part of any cell's identity.
    public var limits = ResourceLimits()
    /// `variants:`: the grid is run once per variant, whose values override the grid's (each a
    /// list of fixed parameters). Empty: the grid once.
    public var variants: [[Parameter]] = []
    /// `method: random`: how many distinct cells to draw (W&B's `run_cap`), and the seed of the
    /// draws (the same seed, the same cells).
    public var runCap: Int?
    public var seed: Int?
    /// `refine:`: cells added after the grid where a condition holds (`Refinement`).
    public var refine: Refinement?

    /// One parameter of the grid.
    public struct Parameter: Sendable, Equatable {
        /// A cell parameter's name, as in `isosweep train` with underscores (max_steps, ...).
        public var name: String
        /// The values it takes (one for a fixed parameter).
        public var values: [ParameterValue]
        /// Whether it was given as an axis (`values`).
        public var isAxis: Bool
        /// `method: random` only: the distribution it is drawn from.
        public var distribution: Distribution? = nil
    }

    /// Default tries per cell.
    public static let defaultMaxAttempts = 3

    /// Reads and validates a sweep file.
    public static func load(path: String) throws(IsosweepError) -> SweepSpec {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw IsosweepError.sweepFile(path, line: nil, key: nil, "cannot read the sweep file: check the path")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw IsosweepError.sweepFile(path, line: nil, key: nil, "the sweep file is not UTF-8 text")
        }
        return try parse(text, file: path)
    }

    /// Parses and validates sweep-file text; `file` names it in errors.
    public static func parse(_ text: String, file: String) throws(IsosweepError) -> SweepSpec {
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw IsosweepError.sweepFile(file, line: nil, key: nil, "is not valid YAML: \(error)")
        }
        guard let root, case .mapping(let top) = root else {
            throw IsosweepError.sweepFile(
                file,
                line: root?.mark?.line,
                key: nil,
                "expected a mapping with name, method and parameters"
            )
        }
        func fail(_ node: Node?, _ key: String?, _ message: String) -> IsosweepError {
            IsosweepError.sweepFile(file, line: node?.mark?.line, key: key, message)
        }
        let keys = try readTopLevel(top, fail)
        guard let name = keys.name else { throw fail(root, "name", "is required: name the sweep") }
        guard let parameters = keys.parameters else {
            throw fail(root, "parameters", "is required: the grid's parameters (n, d, width, ...)")
        }
        for required in CellParameters.catalogue.filter(\.isRequired).map(\.name)
        where !parameters.contains(where: { $0.name == required }) {
            throw fail(
                root,
                "parameters.\(required)",
                "is required: the grid is over (n, d, width); give {value: ...} or {values: [...]}"
            )
        }
        let isRandom = keys.method == .random
        var refine: Refinement?
        if let refineNode = keys.refineNode {
            guard !isRandom else { throw fail(refineNode, "refine", "refines a grid; a random sweep draws its cells") }
            refine = try Refinement.parse(refineNode, parameters: parameters, fail)
        }
        try checkMethod(keys, parameters: parameters, root: root, fail)
        let spec = SweepSpec(
            name: name,
            method: keys.method ?? .grid,
            description: keys.description,
            maxAttempts: keys.maxAttempts,
            parameters: parameters,
            source: text,
            limits: keys.limits,
            variants: keys.variants,
            runCap: keys.runCap,
            seed: keys.seed,
            refine: refine
        )
        try checkCellsFit(spec, file: file)
        return spec
    }

    /// A sweep file's top-level keys as written, before the checks that need several of them.
    private struct TopLevelKeys {
        var name: String?
        var method: Method?
        var description: String?
        var maxAttempts: Int?
        var parameters: [Parameter]?
        var variants: [[Parameter]] = []
        var runCap: Int?
        var seed: Int?
        /// Parsed once the parameters are known (a refinement names them).
        var refineNode: Node?
        var limits = ResourceLimits.sweepFileDefaults
    }

    /// Reads and checks each top-level key on its own, in file order, refusing unknown keys.
    private static func readTopLevel(
        _ top: Node.Mapping,
        _ fail: (Node?, String?, String) -> IsosweepError
    ) throws(IsosweepError) -> TopLevelKeys {
        var keys = TopLevelKeys()
        for (keyNode, value) in top {
            guard let key = keyNode.string else { throw fail(keyNode, nil, "keys must be strings") }
            switch key {
            case "name":
                guard value.tag.rawValue == Tag.Name.str.rawValue, let s = value.string, !s.isEmpty else {
                    throw fail(value, key, "expected a non-empty string")
                }
                keys.name = s
            case "method":
                guard let s = value.string, let chosen = Method(rawValue: s) else {
                    throw fail(value, key, "expected grid or random (bayes searches are not supported)")
                }
                keys.method = chosen
            case "description":
                guard value.tag.rawValue == Tag.Name.str.rawValue, let s = value.string else {
                    throw fail(value, key, "expected a string")
                }
                keys.description = s
            case "max_attempts":
                guard value.tag.rawValue == Tag.Name.int.rawValue, let n = value.int, n >= 1, n <= 100 else {
                    throw fail(value, key, "expected a whole number from 1 to 100")
                }
                keys.maxAttempts = n
            case "parameters":
                keys.parameters = try parseParameters(value, fail)
            case "resources":
                keys.limits = try parseResources(value, fail)
            case "variants":
                keys.variants = try parseVariants(value, fail)
            case "refine":
                keys.refineNode = value
            case "run_cap":
                guard value.tag.rawValue == Tag.Name.int.rawValue, let n = value.int, n >= 1, n <= 10_000_000 else {
                    throw fail(value, key, "expected a whole number of cells from 1 to 10000000")
                }
                keys.runCap = n
            case "seed":
                guard value.tag.rawValue == Tag.Name.int.rawValue, let n = value.int, n >= 0 else {
                    throw fail(value, key, "expected a whole number >= 0 (the seed of a random sweep's draws)")
                }
                keys.seed = n
            default:
                throw fail(
                    keyNode,
                    key,
                    "unknown key; a sweep file has name, method, description, max_attempts, run_cap, seed, resources, parameters, variants and refine"
                )
            }
        }
        return keys
    }

    /// Checks that the keys suit the method: a random sweep has a `run_cap` and no variants; a grid
    /// has no `run_cap` and no distributions.
    private static func checkMethod(
        _ keys: TopLevelKeys,
        parameters: [Parameter],
        root: Node,
        _ fail: (Node?, String?, String) -> IsosweepError
    ) throws(IsosweepError) {
        if keys.method == .random {
            guard keys.runCap != nil else {
                throw fail(root, "run_cap", "is required with method: random (how many cells)")
            }
            guard keys.variants.isEmpty else {
                throw fail(root, "variants", "apply to grids; a random sweep draws its cells")
            }
        } else {
            if keys.runCap != nil { throw fail(root, "run_cap", "applies to method: random") }
            if let bad = parameters.first(where: { $0.distribution != nil }) {
                throw fail(
                    root,
                    "parameters.\(bad.name)",
                    "a distribution needs method: random; a grid takes {value: x} or {values: [...]}"
                )
            }
        }
    }

    /// Checks that every combination is a valid cell and fits the memory the file gives each, so
    /// that a sweep that cannot run is refused before it starts.
    private static func checkCellsFit(_ spec: SweepSpec, file: String) throws(IsosweepError) {
        for cell in try spec.cells(file: file) {
            do {
                _ = try cell.requirements(resources: spec.limits)
            } catch {
                throw IsosweepError(.sweepFile, "\(file): resources.memory: \(error.message)", remedy: error.remedy)
            }
        }
    }

    /// `resources: {threads: 2 | auto, memory: 24GiB | auto, time_limit: 30m, checkpoint_every: 10m | off,
    /// stall_limit: 10m | off}`; a file without `resources:` gets the defaults too.
    private static func parseResources(
        _ node: Node,
        _ fail: (Node?, String?, String) -> IsosweepError
    ) throws(IsosweepError) -> ResourceLimits {
        guard case .mapping(let mapping) = node else {
            throw fail(node, "resources", "expected a mapping such as {threads: 2, time_limit: 30m}")
        }
        var limits = ResourceLimits.sweepFileDefaults
        for (keyNode, value) in mapping {
            let key = keyNode.string ?? ""
            switch key {
            case "threads":
                if value.string == "auto" { continue }
                guard value.tag.rawValue == Tag.Name.int.rawValue, let n = value.int, n >= 1,
                    n <= Int(Wire.maximumThreads)
                else {
                    throw fail(
                        value,
                        "resources.threads",
                        "expected auto or a whole number from 1 to \(Wire.maximumThreads)"
                    )
                }
                limits.threads = UInt16(n)
            case "time_limit":
                guard let text = value.string, let seconds = Units.parseDuration(text), seconds >= 0.001,
                    seconds * 1000 <= Double(Wire.maximumTimeLimitMilliseconds)
                else {
                    throw fail(
                        value,
                        "resources.time_limit",
                        "expected a duration such as 90s, 30m, 2h or 1h30m (up to 30 days)"
                    )
                }
                limits.timeLimitMilliseconds = UInt64((seconds * 1000).rounded())
            case "memory":
                if value.string == "auto" { continue }
                guard let text = value.string, let bytes = Units.parseSize(text), bytes >= Wire.minimumWorkerMemory
                else {
                    throw fail(
                        value,
                        "resources.memory",
                        "expected auto (each cell's estimate) or a size such as 512MiB, 24GiB or 2.5GB (at least 1MiB)"
                    )
                }
                limits.memoryBytes = bytes
            case "checkpoint_every", "stall_limit":
                let field: WritableKeyPath<ResourceLimits, UInt64> =
                    key == "stall_limit" ? \.stallLimitMilliseconds : \.checkpointEveryMilliseconds
                limits[keyPath: field] = try parseOptionalDuration(value, "resources.\(key)", fail)
            default:
                throw fail(
                    keyNode,
                    "resources.\(key)",
                    "unknown key; resources has threads, memory, time_limit, checkpoint_every and stall_limit"
                )
            }
        }
        return limits
    }

    /// `off` (0) or a duration such as 10m, in milliseconds.
    private static func parseOptionalDuration(
        _ value: Node,
        _ field: String,
        _ fail: (Node?, String?, String) -> IsosweepError
    ) throws(IsosweepError) -> UInt64 {
        if value.string == "off" { return 0 }
        guard let text = value.string, let seconds = Units.parseDuration(text), seconds >= 0.001,
            seconds * 1000 <= Double(Wire.maximumTimeLimitMilliseconds)
        else {
            throw fail(value, field, "expected off or a duration such as 5s, 10m or 1h (up to 30 days)")
        }
        return UInt64((seconds * 1000).rounded())
    }

    private static func parseParameters(
        _ node: Node,
        _ fail: (Node?, String?, String) -> IsosweepError
    ) throws(IsosweepError) -> [Parameter] {
        guard case .mapping(let mapping) = node else {
            throw fail(node, "parameters", "expected a mapping of parameter names to {value: ...} or {values: [...]}")
        }
        var result: [Parameter] = []
        for (keyNode, spec) in mapping {
            guard let name = keyNode.string else {
                throw fail(keyNode, "parameters", "parameter names must be strings")
            }
            let path = "parameters.\(name)"
            guard let type = CellParameters.parameter(named: name)?.kind else {
                let known = CellParameters.catalogue.map(\.name).sorted().joined(separator: ", ")
                throw fail(keyNode, path, "unknown parameter; known: \(known)")
            }
            if case .mapping(let body) = spec, body.contains(where: { $0.key.string == "distribution" }) {
                result.append(try parseDistribution(body, name: name, type: type, path: path, fail))
                continue
            }
            guard case .mapping(let body) = spec, body.count == 1, let (innerKey, inner) = body.first,
                let kind = innerKey.string
            else {
                throw fail(spec, path, "expected {value: x} (fixed) or {values: [x, y, ...]} (an axis)")
            }
            switch kind {
            case "value":
                result.append(
                    Parameter(name: name, values: [try value(inner, type, "\(path).value", fail)], isAxis: false)
                )
            case "values":
                guard case .sequence(let items) = inner else {
                    throw fail(inner, "\(path).values", "expected a list [x, y, ...]")
                }
                guard !items.isEmpty else {
                    throw fail(inner, "\(path).values", "is empty: an axis needs at least one value")
                }
                var values: [ParameterValue] = []
                for (index, item) in items.enumerated() {
                    values.append(try value(item, type, "\(path).values[\(index)]", fail))
                }
                result.append(Parameter(name: name, values: values, isAxis: true))
            default:
                throw fail(
                    innerKey,
                    "\(path).\(kind)",
                    "unknown key; expected value or values (min/max/distribution searches are not supported)"
                )
            }
        }
        return result
    }

    /// `{distribution: int_uniform, min: 1, max: 9}` and the other W&B distributions.
    private static func parseDistribution(
        _ body: Node.Mapping,
        name: String,
        type: CellParameter.Kind,
        path: String,
        _ fail: (Node?, String?, String) -> IsosweepError
    ) throws(IsosweepError) -> Parameter {
        var fields: [String: Node] = [:]
        for (key, value) in body {
            guard let k = key.string, ["distribution", "min", "max", "q", "values"].contains(k) else {
                throw fail(
                    key,
                    path,
                    "unknown key \(key.string ?? ""); a distribution has distribution, min, max, q or values"
                )
            }
            fields[k] = value
        }
        let name_ = fields["distribution"]?.string ?? ""
        func number(_ key: String) throws(IsosweepError) -> Double {
            guard let node = fields[key], let v = node.float, v.isFinite else {
                throw fail(fields["distribution"], "\(path).\(key)", "is required by \(name_): a number")
            }
            return v
        }
        let numeric: Bool
        switch type {
        case .int, .number: numeric = true
        default: numeric = false
        }
        let distribution: Distribution
        switch name_ {
        case "categorical":
            guard case .sequence(let items)? = fields["values"], !items.isEmpty else {
                throw fail(fields["distribution"], "\(path).values", "categorical needs values: [x, y, ...]")
            }
            var values: [ParameterValue] = []
            for (index, item) in items.enumerated() {
                values.append(try value(item, type, "\(path).values[\(index)]", fail))
            }
            return Parameter(name: name, values: values, isAxis: true)
        case "int_uniform":
            guard case .int = type else {
                throw fail(fields["distribution"], path, "int_uniform needs a whole-number parameter")
            }
            let low = try number("min")
            let high = try number("max")
            guard low == low.rounded(), high == high.rounded(), low <= high else {
                throw fail(fields["distribution"], path, "int_uniform needs whole numbers min <= max")
            }
            distribution = .intUniform(min: Int(low), max: Int(high))
        case "uniform":
            guard numeric else { throw fail(fields["distribution"], path, "uniform needs a numeric parameter") }
            let low = try number("min")
            let high = try number("max")
            guard low <= high else { throw fail(fields["distribution"], path, "needs min <= max") }
            distribution = .uniform(min: low, max: high)
        case "log_uniform_values", "q_log_uniform_values":
            guard numeric else { throw fail(fields["distribution"], path, "\(name_) needs a numeric parameter") }
            let low = try number("min")
            let high = try number("max")
            guard low > 0, low <= high else {
                throw fail(fields["distribution"], path, "\(name_) needs 0 < min <= max (values, not exponents)")
            }
            if name_ == "q_log_uniform_values" {
                let q = fields["q"] == nil ? 1 : try number("q")
                guard q > 0 else { throw fail(fields["distribution"], "\(path).q", "must be positive") }
                distribution = .qLogUniformValues(min: low, max: high, q: q)
            } else {
                distribution = .logUniformValues(min: low, max: high)
            }
        default:
            throw fail(
                fields["distribution"],
                "\(path).distribution",
                "expected one of \(Distribution.names.joined(separator: ", ")) (got \(name_))"
            )
        }
        return Parameter(name: name, values: [], isAxis: true, distribution: distribution)
    }

    /// `variants: [{trainer: adam}, {trainer: construction, width: 256}, ...]`.
    private static func parseVariants(
        _ node: Node,
        _ fail: (Node?, String?, String) -> IsosweepError
    ) throws(IsosweepError) -> [[Parameter]] {
        guard case .sequence(let items) = node, !items.isEmpty else {
            throw fail(node, "variants", "expected a non-empty list of mappings, e.g. [{trainer: adam}, {trainer: gd}]")
        }
        var variants: [[Parameter]] = []
        for (index, item) in items.enumerated() {
            let path = "variants[\(index)]"
            guard case .mapping(let mapping) = item, !mapping.isEmpty else {
                throw fail(item, path, "expected a mapping of parameters to values, e.g. {trainer: adam, lr: 0.01}")
            }
            var variant: [Parameter] = []
            for (keyNode, valueNode) in mapping {
                guard let name = keyNode.string, let type = CellParameters.parameter(named: name)?.kind else {
                    let known = CellParameters.catalogue.map(\.name).sorted().joined(separator: ", ")
                    throw fail(keyNode, path, "unknown parameter \(keyNode.string ?? ""); known: \(known)")
                }
                variant.append(
                    Parameter(name: name, values: [try value(valueNode, type, "\(path).\(name)", fail)], isAxis: false)
                )
            }
            variants.append(variant)
        }
        return variants
    }

    private static func value(
        _ node: Node,
        _ type: CellParameter.Kind,
        _ path: String,
        _ fail: (Node?, String?, String) -> IsosweepError
    ) throws(IsosweepError) -> ParameterValue {
        let wrong = fail(node, path, "expected \(type.expected), got \(describe(node))")
        switch type {
        case .int:
            guard node.tag.rawValue == Tag.Name.int.rawValue, let v = node.int else { throw wrong }
            return .int(v)
        case .number:
            guard node.tag.rawValue == Tag.Name.int.rawValue || node.tag.rawValue == Tag.Name.float.rawValue,
                let v = node.float, v.isFinite
            else { throw wrong }
            return .double(v)
        case .text:
            guard node.tag.rawValue == Tag.Name.str.rawValue, let v = node.string else { throw wrong }
            return .string(v)
        case .choice(let options):
            guard node.tag.rawValue == Tag.Name.str.rawValue, let v = node.string, options.contains(v) else {
                throw wrong
            }
            return .string(v)
        case .pair:
            guard case .sequence(let items) = node, items.count == 2 else { throw wrong }
            var labels: [ParameterValue] = []
            for item in items {
                guard case .scalar = item, let s = item.string else { throw wrong }
                labels.append(.string(s))
            }
            return .list(labels)
        }
    }

    private static func describe(_ node: Node) -> String {
        switch node {
        case .scalar(let s): node.tag.rawValue == Tag.Name.str.rawValue ? "the string \"\(s.string)\"" : "\(s.string)"
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .alias: "an alias"
        }
    }

    /// Every cell of the grid (the cartesian product of the axes, last axis fastest), each
    /// validated; duplicates (same key) appear once.
    public func cells(file: String = "the sweep file") throws(IsosweepError) -> [CellWork] {
        try keyedCells(file: file).cells
    }

    /// Every cell of the grid as `cells` gives them, with their keys (hashed once).
    public func keyedCells(
        file: String = "the sweep file"
    ) throws(IsosweepError) -> (
        cells: [CellWork], keys: [CellKey]
    ) {
        var combos: [[String: ParameterValue]] = [[:]]
        for parameter in parameters where method != .random {
            combos = combos.flatMap { combo in
                parameter.values.map { value in
                    var next = combo
                    next[parameter.name] = value
                    return next
                }
            }
        }
        if method == .random { combos = try randomCombos(file: file) }
        if !variants.isEmpty {
            combos = variants.flatMap { variant in
                combos.map { combo in
                    var next = combo
                    for parameter in variant { next[parameter.name] = parameter.values[0] }
                    return next
                }
            }
        }
        var seen = Set<CellKey>()
        var cells: [CellWork] = []
        var keys: [CellKey] = []
        for combo in combos {
            let cell = CellParameters(values: combo)
            do {
                try cell.validate()
            } catch {
                let where_ = combo.keys.sorted().map { "\($0): \(combo[$0]!.description)" }.joined(separator: ", ")
                throw IsosweepError.sweepFile(
                    file,
                    line: nil,
                    key: "parameters",
                    "the cell {\(where_)} is invalid: \(error.message)"
                )
            }
            let work = CellWork.train(cell.resolved())
            let key = work.cellKey
            if seen.insert(key).inserted {
                cells.append(work)
                keys.append(key)
            }
        }
        return (cells, keys)
    }
}

extension IsosweepError {
    /// A sweep file is wrong: names the file, the line and key where known, and what was expected
    /// (`sweeps/x.yaml:5: parameters.d.value: expected a whole number`).
    public static func sweepFile(_ file: String, line: Int?, key: String?, _ message: String) -> IsosweepError {
        let location = line.map { "\(file):\($0)" } ?? file
        return IsosweepError(.sweepFile, key.map { "\(location): \($0): \(message)" } ?? "\(location): \(message)")
    }
}
