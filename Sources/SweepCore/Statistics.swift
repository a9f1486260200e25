import Foundation

/// Small-sample statistics for sweep tables: means, intervals over seeds, and least-squares slopes.
public enum Statistics {
    /// Summary of a sample.
    public struct Summary: Sendable, Equatable, Codable {
        public var count: Int
        public var mean: Double
        /// Sample standard deviation (n - 1 in the denominator); 0 for one value.
        public var standardDeviation: Double
        /// Half-width of the 95% confidence interval of the mean (Student t); nil for one value.
        public var halfWidth95: Double?

        enum CodingKeys: String, CodingKey {
            case count, mean
            case standardDeviation = "sd"
            case halfWidth95 = "ci95_half_width"
        }
    }

    /// Mean, standard deviation and 95% interval of the finite values; nil if there are none.
    public static func summary(_ values: [Double]) -> Summary? {
        let finite = values.filter(\.isFinite)
        guard !finite.isEmpty else { return nil }
        let n = Double(finite.count)
        let mean = finite.reduce(0, +) / n
        guard finite.count > 1 else { return Summary(count: 1, mean: mean, standardDeviation: 0, halfWidth95: nil) }
        let variance = finite.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (n - 1)
        let sd = variance.squareRoot()
        return Summary(
            count: finite.count,
            mean: mean,
            standardDeviation: sd,
            halfWidth95: tQuantile975(degreesOfFreedom: finite.count - 1) * sd / n.squareRoot()
        )
    }

    /// A least-squares line y = intercept + slope x.
    public struct Line: Sendable, Equatable, Codable {
        public var count: Int
        public var slope: Double
        public var intercept: Double
        /// Standard error of the slope; nil with fewer than 3 points.
        public var slopeStandardError: Double?
        /// Half-width of the slope's 95% interval (Student t, n - 2 degrees of freedom).
        public var slopeHalfWidth95: Double?
        public var rSquared: Double

        enum CodingKeys: String, CodingKey {
            case count, slope, intercept
            case slopeStandardError = "slope_se"
            case slopeHalfWidth95 = "slope_ci95_half_width"
            case rSquared = "r_squared"
        }
    }

    /// Least squares of y on x with one intercept per group and a common slope (the fixed-effects
    /// or within estimator): each group's x and y are centred on their own means first, so a
    /// group that sits higher (a larger n d, a rougher initial network) does not tilt the slope.
    /// The slope's standard error has n - 1 - groups degrees of freedom; `intercept` is the mean
    /// of the groups' intercepts and `rSquared` the within-group R^2. Nil without spread in x
    /// inside the groups.
    public static func fitLine(x: [Double], y: [Double], groups: [Int]) -> Line? {
        precondition(x.count == y.count && x.count == groups.count)
        let n = x.count
        var sums: [Int: (x: Double, y: Double, count: Double)] = [:]
        for i in 0..<n {
            let sum = sums[groups[i], default: (0, 0, 0)]
            sums[groups[i]] = (sum.x + x[i], sum.y + y[i], sum.count + 1)
        }
        var sxx = 0.0
        var sxy = 0.0
        var syy = 0.0
        for i in 0..<n {
            let g = sums[groups[i]]!
            let dx = x[i] - g.x / g.count
            let dy = y[i] - g.y / g.count
            sxx += dx * dx
            sxy += dx * dy
            syy += dy * dy
        }
        // Spread below rounding (every x equal but for its last bits) is no spread.
        guard sxx > 0, sxx > 1e-20 * Double(n) * (x.map { $0 * $0 }.max() ?? 0) else { return nil }
        let slope = sxy / sxx
        let residuals = max(0, syy - slope * sxy)
        let intercepts = sums.values.map { $0.y / $0.count - slope * $0.x / $0.count }
        let freedom = n - 1 - sums.count
        let se = freedom > 0 ? (residuals / Double(freedom) / sxx).squareRoot() : nil
        return Line(
            count: n,
            slope: slope,
            intercept: intercepts.reduce(0, +) / Double(intercepts.count),
            slopeStandardError: se,
            slopeHalfWidth95: se.map { tQuantile975(degreesOfFreedom: freedom) * $0 },
            rSquared: syy > 0 ? 1 - residuals / syy : 1
        )
    }

    /// Ordinary least squares of y on x; nil with fewer than 2 points or no spread in x.
    public static func fitLine(x: [Double], y: [Double]) -> Line? {
        precondition(x.count == y.count)
        let n = x.count
        guard n >= 2 else { return nil }
        let mx = x.reduce(0, +) / Double(n)
        let my = y.reduce(0, +) / Double(n)
        var sxx = 0.0
        var sxy = 0.0
        var syy = 0.0
        for i in 0..<n {
            sxx += (x[i] - mx) * (x[i] - mx)
            sxy += (x[i] - mx) * (y[i] - my)
            syy += (y[i] - my) * (y[i] - my)
        }
        // Spread below rounding (every x equal but for its last bits) is no spread.
        guard sxx > 0, sxx > 1e-20 * Double(n) * (x.map { $0 * $0 }.max() ?? 0) else { return nil }
        let slope = sxy / sxx
        let intercept = my - slope * mx
        var residuals = 0.0
        for i in 0..<n {
            let r = y[i] - intercept - slope * x[i]
            residuals += r * r
        }
        let r2 = syy > 0 ? 1 - residuals / syy : 1
        guard n >= 3 else {
            return Line(
                count: n,
                slope: slope,
                intercept: intercept,
                slopeStandardError: nil,
                slopeHalfWidth95: nil,
                rSquared: r2
            )
        }
        let se = (residuals / Double(n - 2) / sxx).squareRoot()
        return Line(
            count: n,
            slope: slope,
            intercept: intercept,
            slopeStandardError: se,
            slopeHalfWidth95: tQuantile975(degreesOfFreedom: n - 2) * se,
            rSquared: r2
        )
    }

    /// The median of the finite values.
    public static func median(_ values: [Double]) -> Double? {
        let sorted = values.filter(\.isFinite).sorted()
        guard !sorted.isEmpty else { return nil }
        let mid = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
    }

    /// The 97.5% quantile of Student's t with `degreesOfFreedom` (two-sided 95% intervals):
    /// exact table values up to 30, then the Cornish-Fisher expansion around the normal
    /// quantile (error < 1e-5 there).
    public static func tQuantile975(degreesOfFreedom df: Int) -> Double {
        precondition(df >= 1)
        let table: [Double] = [
            12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851, 2.364624252, 2.306004135,
            2.262157163, 2.228138852, 2.200985160, 2.178812830, 2.160368656, 2.144786688, 2.131449546, 2.119905299,
            2.109815578, 2.100922040, 2.093024054, 2.085963447, 2.079613845, 2.073873068, 2.068657610, 2.063898562,
            2.059538553, 2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456,
        ]
        if df <= table.count { return table[df - 1] }
        let z = 1.959963984540054
        let v = Double(df)
        let z3 = z * z * z
        let z5 = z3 * z * z
        let z7 = z5 * z * z
        return z + (z3 + z) / (4 * v) + (5 * z5 + 16 * z3 + 3 * z) / (96 * v * v)
            + (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / (384 * v * v * v)
    }
}
