import ArgumentParser
import Foundation
import TrainingCore

/// `isosweep demo`: a handful of cells across widths, printed as a table, on this machine.
struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a few cells across widths on this machine and print them as a table."
    )

    @Option(help: "Training points.") var n = 256
    @Option(help: "Input dimension.") var d = 32
    @Option(help: "Widths, comma-separated.") var widths = "1,2,8,32,64,128,512"
    @Option(help: "Seed.") var seed = 0
    @Option(help: "Activation.") var activation: ActivationKind = .relu

    func validate() throws {
        guard !parsedWidths.isEmpty, parsedWidths.allSatisfy({ $0 >= 1 }) else {
            throw ValidationError("--widths must be positive whole numbers separated by commas (got \(widths))")
        }
    }

    var parsedWidths: [Int] { widths.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) } }

    func run() throws {
        BLAS.setThreads(1)
        print("Random labels on the unit sphere, n = \(n), d = \(d), adam, \(activation.rawValue); noise level 1.")
        print("The law: fitting below the noise level forces Lip >~ eps sqrt(n d / p).\n")
        let header = ["width", "p", "p/n", "train_mse", "eps", "fit", "lip_support_lower", "lip_lower", "lip_upper", "law_ratio", "steps", "seconds"]
        var rows: [[String]] = []
        try Output.reportingErrors {
            for width in parsedWidths {
                let cell = CellParameters(n: n, d: d, width: width, seed: seed, activation: activation)
                let m = try Cell.run(cell).result.metrics
                rows.append([
                    String(width), String(m.p), fmt(Double(m.p) / Double(n)), fmt(m.trainMSE), fmt(m.eps), fmt(m.fitFraction),
                    fmt(m.lipSupportLower), fmt(m.lipLower), fmt(m.lipUpper), fmt(m.lawRatio), String(m.steps),
                    fmt(m.trainSeconds + m.lipSeconds),
                ])
            }
        }
        print(Output.table(header: header, rows: rows))
        print("\neps = noise level - train_mse; law_ratio = lip_support_lower / (eps sqrt(n d / p)).")
    }

    private func fmt(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "-" }
        return String(format: abs(value) >= 1000 || (abs(value) < 0.001 && value != 0) ? "%.3g" : "%.4f", value)
    }
}
