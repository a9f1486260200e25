public import Diagnostics

/// The exact Lipschitz constant on R^d of a small ReLU network f(x) = a . relu(W x + b) + c.
///
/// f is linear on each region of the arrangement of the hyperplanes w_j . x + b_j = 0, with
/// gradient sum over the active units of a_j w_j, so Lip(f) is the largest such gradient over
/// the regions that have an interior. The search branches on one unit at a time (largest
/// |a_j| ||w_j|| first), keeps a point strictly inside the current region, proves the other
/// side non-empty with a small linear program (the largest margin from every hyperplane), and
/// prunes a branch when its centred bound (the fixed gradient plus half the undecided units,
/// plus half their path sum) cannot beat the best region found.
public enum ExactLipschitz {
    /// Largest input dimension and width accepted: beyond, the regions are too many.
    public static let maximumInputDimension = 8
    public static let maximumWidth = 40
    /// Linear programs solved at most before the search gives up.
    public static let linearProgramLimit = 2_000_000
    /// Margin below which a region counts as having no interior (a sliver of rounding).
    static let interiorMargin = 1e-9

    /// What the search found.
    public struct Result: Sendable, Equatable {
        /// Lip(f): the largest gradient norm over the regions.
        public var value: Double
        /// A point inside a region with that gradient.
        public var point: [Double]
        /// Regions reached (leaves of the search) and linear programs solved.
        public var regions: Int
        public var linearPrograms: Int
    }

    /// The exact constant of `network`, or a clear error when it is not a small ReLU network.
    public static func constant(of network: Network<Double>) throws(IsosweepError) -> Result {
        let d = network.inputDimension
        let k = network.width
        guard network.activation == .relu else {
            throw IsosweepError(
                .invalidParameter,
                "--exact needs a ReLU network (this one uses \(network.activation.rawValue)): only then is f linear on regions",
                remedy: "drop --exact to get the certified bounds"
            )
        }
        guard d <= maximumInputDimension, k <= maximumWidth else {
            throw IsosweepError(
                .invalidParameter,
                "--exact handles d <= \(maximumInputDimension) and width <= \(maximumWidth) (this network: d = \(d), width = \(k)): the regions grow like width^d",
                remedy: "drop --exact to get the certified bounds"
            )
        }
        var search = Search(network: network)
        try search.run()
        return Result(
            value: search.best,
            point: search.bestPoint,
            regions: search.regions,
            linearPrograms: search.linearPrograms
        )
    }

    struct Search {
        let d: Int
        /// Units with w_j != 0, largest |a_j| ||w_j|| first: unit directions, offsets and a_j ||w_j||.
        let directions: [[Double]]
        let offsets: [Double]
        let contributions: [[Double]]
        /// Suffix sums from unit m on: half their contributions, and half their path sum.
        let halfCentre: [[Double]]
        let halfPath: [Double]
        var best = 0.0
        var bestPoint: [Double]
        var regions = 0
        var linearPrograms = 0

        init(network: Network<Double>) {
            d = network.inputDimension
            let w = network.weights
            let a = network.outputWeights
            let b = network.biases
            var units: [(direction: [Double], offset: Double, contribution: [Double], size: Double)] = []
            for j in 0..<network.width {
                let row = w.row(j)
                let norm = row.reduce(0) { $0 + $1 * $1 }.squareRoot()
                // A unit with w_j = 0 is constant: it adds nothing to any gradient.
                guard norm > 0 else { continue }
                units.append((row.map { $0 / norm }, b[j] / norm, row.map { a[j] * $0 }, abs(a[j]) * norm))
            }
            units.sort { $0.size > $1.size }
            directions = units.map(\.direction)
            offsets = units.map(\.offset)
            contributions = units.map(\.contribution)
            var centre = [[Double]](
                repeating: [Double](repeating: 0, count: network.inputDimension),
                count: units.count + 1
            )
            var path = [Double](repeating: 0, count: units.count + 1)
            for m in stride(from: units.count - 1, through: 0, by: -1) {
                centre[m] = zip(centre[m + 1], units[m].contribution).map { $0 + $1 / 2 }
                path[m] = path[m + 1] + units[m].size / 2
            }
            halfCentre = centre
            halfPath = path
            bestPoint = [Double](repeating: 0, count: network.inputDimension)
        }

        mutating func run() throws(IsosweepError) {
            try visit(
                unit: 0,
                gradient: [Double](repeating: 0, count: d),
                constraints: [],
                inside: [Double](repeating: 0, count: d)
            )
        }

        func norm(_ v: [Double]) -> Double { v.reduce(0) { $0 + $1 * $1 }.squareRoot() }

        /// The most a region below this node can have: the centred bound of the undecided units.
        func ceiling(unit m: Int, gradient g: [Double]) -> Double {
            norm(zip(g, halfCentre[m]).map { $0 + $1 }) + halfPath[m]
        }

        /// Explores the regions where units before `m` have the signs in `constraints` (+1:
        /// active), `inside` strictly inside that region, `g` their gradient so far.
        mutating func visit(
            unit m: Int,
            gradient g: [Double],
            constraints: [(Int, Double)],
            inside x: [Double]
        )
            throws(IsosweepError)
        {
            guard ceiling(unit: m, gradient: g) > best * (1 + 1e-12) else { return }
            if m == directions.count {
                regions += 1
                let value = norm(g)
                if value > best {
                    best = value
                    bestPoint = x
                }
                return
            }
            let z = zip(directions[m], x).reduce(offsets[m]) { $0 + $1.0 * $1.1 }
            let active = zip(g, contributions[m]).map { $0 + $1 }
            // The side with the larger ceiling first: good regions early prune more.
            var sides: [(sign: Double, gradient: [Double])] = [(1, active), (-1, g)]
            if ceiling(unit: m + 1, gradient: g) > ceiling(unit: m + 1, gradient: active) { sides.reverse() }
            for side in sides {
                let next = constraints + [(m, side.sign)]
                var point = x
                if side.sign * z < Self.margin(of: x) {
                    // The current point is not (safely) on this side: is the side empty?
                    guard let found = try interior(next) else { continue }
                    point = found
                }
                try visit(unit: m + 1, gradient: side.gradient, constraints: next, inside: point)
            }
        }

        /// A margin below which a point is re-centred by a linear program rather than trusted.
        static func margin(of x: [Double]) -> Double {
            interiorMargin * max(1, x.reduce(0) { max($0, abs($1)) })
        }

        /// A point strictly inside { x : sign_j (u_j . x + o_j) > 0 for each constraint }, the one
        /// farthest from its hyperplanes (up to 1), or nil when it has no interior.
        mutating func interior(_ constraints: [(Int, Double)]) throws(IsosweepError) -> [Double]? {
            linearPrograms += 1
            guard linearPrograms <= ExactLipschitz.linearProgramLimit else {
                throw IsosweepError(
                    .numerical,
                    "the exact search solved \(ExactLipschitz.linearProgramLimit) linear programs without finishing: the network has too many regions for --exact",
                    remedy: "drop --exact to get the certified bounds"
                )
            }
            // Variables x+ (d), x- (d), delta: maximise delta with
            // -sign (u . (x+ - x-)) + delta <= sign o  and  delta <= 1.
            var rows: [[Double]] = []
            var bounds: [Double] = []
            for (unit, sign) in constraints {
                let u = directions[unit]
                rows.append(u.map { -sign * $0 } + u.map { sign * $0 } + [1])
                bounds.append(sign * offsets[unit])
            }
            rows.append([Double](repeating: 0, count: 2 * d) + [1])
            bounds.append(1)
            let objective = [Double](repeating: 0, count: 2 * d) + [1]
            guard case .optimal(let value, let y) = DenseLP.maximize(objective, rows, bounds), value > interiorMargin
            else { return nil }
            return (0..<d).map { y[$0] - y[d + $0] }
        }
    }
}
