import Foundation
import SweepCore
import Testing

/// Statistics against numpy/scipy/statsmodels on fixed inputs (Fixtures/make_statistics_fixture.py).
@Suite struct StatisticsTests {
    func fixture() throws -> [String: Any] {
        let url = try #require(
            Bundle.module.url(forResource: "statistics", withExtension: "json", subdirectory: "Fixtures")
        )
        return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
    }

    func close(_ a: Double?, _ b: Any?, _ tolerance: Double = 1e-9) -> Bool {
        guard let a, let b = b as? Double else { return false }
        return abs(a - b) <= tolerance * max(1, abs(b))
    }

    @Test func summariesMatchScipy() throws {
        let summaries = try #require(try fixture()["summaries"] as? [String: [String: Any]])
        #expect(summaries.count == 3)
        for (name, expected) in summaries {
            let values = try #require(expected["values"] as? [Double])
            let s = try #require(Statistics.summary(values))
            #expect(s.count == values.count)
            #expect(close(s.mean, expected["mean"]), "\(name) mean")
            #expect(close(s.standardDeviation, expected["sd"]), "\(name) sd")
            #expect(close(s.halfWidth95, expected["ci95_half_width"], 1e-8), "\(name) ci")
            #expect(close(Statistics.median(values), expected["median"]), "\(name) median")
        }
        #expect(Statistics.summary([2.5])?.halfWidth95 == nil)
        #expect(Statistics.summary([.nan, .infinity]) == nil)
    }

    @Test func linesMatchScipyLinregress() throws {
        let lines = try #require(try fixture()["lines"] as? [String: [String: Any]])
        #expect(lines.count == 3)
        for (name, expected) in lines {
            let x = try #require(expected["x"] as? [Double])
            let y = try #require(expected["y"] as? [Double])
            let line = try #require(Statistics.fitLine(x: x, y: y))
            #expect(close(line.slope, expected["slope"]), "\(name) slope")
            #expect(close(line.intercept, expected["intercept"]), "\(name) intercept")
            #expect(close(line.slopeStandardError, expected["slope_se"], 1e-8), "\(name) se")
            #expect(close(line.slopeHalfWidth95, expected["slope_ci95_half_width"], 1e-8), "\(name) ci")
            #expect(close(line.rSquared, expected["r_squared"]), "\(name) r2")
        }
        #expect(Statistics.fitLine(x: [1, 1, 1], y: [1, 2, 3]) == nil)
        #expect(Statistics.fitLine(x: [1], y: [1]) == nil)
    }

    /// The pooled fit's estimator (one intercept per series, a common slope) against statsmodels'
    /// OLS of y ~ x + C(group): slope, its standard error and its 95% interval.
    @Test func fixedEffectsFitsMatchStatsmodels() throws {
        let fits = try #require(try fixture()["fixed_effects"] as? [String: [String: Any]])
        #expect(fits.count == 2)
        for (name, expected) in fits {
            let x = try #require(expected["x"] as? [Double])
            let y = try #require(expected["y"] as? [Double])
            let groups = try #require(expected["groups"] as? [Int])
            let line = try #require(Statistics.fitLine(x: x, y: y, groups: groups))
            #expect(close(line.slope, expected["slope"]), "\(name) slope")
            #expect(close(line.slopeStandardError, expected["slope_se"], 1e-8), "\(name) se")
            // Student's quantile is an approximation good to ~1e-5 relative.
            #expect(close(line.slopeHalfWidth95, expected["slope_ci95_half_width"], 1e-4), "\(name) ci")
            #expect(Double(x.count - 1 - Set(groups).count) == expected["df_resid"] as? Double)
        }
    }

    @Test func tQuantilesMatchScipy() throws {
        let quantiles = try #require(try fixture()["t975"] as? [String: Double])
        for (df, expected) in quantiles {
            #expect(abs(Statistics.tQuantile975(degreesOfFreedom: Int(df)!) - expected) < 2e-5, "df \(df)")
        }
    }

    @Test func groupInterceptsRecoverTheCommonSlope() throws {
        // Two groups on the same slope -0.5 at different heights, side by side in x: one
        // intercept for all reads the jump between them as a positive slope.
        var x: [Double] = []
        var y: [Double] = []
        var groups: [Int] = []
        for i in 0..<6 {
            x.append(Double(i) / 5)
            y.append(-0.5 * Double(i) / 5 + (i % 2 == 0 ? 0.01 : -0.01))
            groups.append(0)
            x.append(2 + Double(i) / 5)
            y.append(5 - 0.5 * (2 + Double(i) / 5) + (i % 2 == 0 ? -0.01 : 0.01))
            groups.append(1)
        }
        let pooled = try #require(Statistics.fitLine(x: x, y: y))
        #expect(pooled.slope > 0)
        let within = try #require(Statistics.fitLine(x: x, y: y, groups: groups))
        #expect(abs(within.slope + 0.5) < 0.02)
        // n - 1 - groups = 9 degrees of freedom: the interval is Student's at 9.
        let se = try #require(within.slopeStandardError)
        #expect(abs(try #require(within.slopeHalfWidth95) - 2.262 * se) < 1e-3 * se)
        // Residuals from the group means, slope by slope, by hand.
        var rss = 0.0
        var sxx = 0.0
        for g in 0..<2 {
            let idx = groups.indices.filter { groups[$0] == g }
            let mx = idx.map { x[$0] }.reduce(0, +) / Double(idx.count)
            let my = idx.map { y[$0] }.reduce(0, +) / Double(idx.count)
            for i in idx {
                let r = (y[i] - my) - within.slope * (x[i] - mx)
                rss += r * r
                sxx += (x[i] - mx) * (x[i] - mx)
            }
        }
        #expect(abs(se - (rss / 9 / sxx).squareRoot()) < 1e-12)
    }
}
