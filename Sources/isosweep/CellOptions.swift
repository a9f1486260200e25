public import ArgumentParser
import Diagnostics
public import TrainingCore

extension DataKind: ExpressibleByArgument {}
extension LabelKind: ExpressibleByArgument {}
extension ActivationKind: ExpressibleByArgument {}
extension TrainerKind: ExpressibleByArgument {}

/// The help of a cell parameter's option, from `CellParameters.catalogue`.
private func help(_ name: String) -> ArgumentHelp {
    ArgumentHelp(CellParameters.parameter(named: name)?.help ?? "")
}

/// The parameters of one cell, as command-line options: one per entry of
/// `CellParameters.catalogue`, named as in sweep files with dashes (a test holds them together).
struct CellOptions: ParsableArguments {
    @Option(help: help("n")) var n: Int
    @Option(help: help("d")) var d: Int
    @Option(help: help("width")) var width: Int
    @Option(help: help("seed")) var seed: Int = 0
    @Option(help: help("data")) var data: DataKind = .sphere
    @Option(help: help("data_file")) var dataFile: String?
    @Option(help: help("label_file")) var labelFile: String?
    @Option(help: help("classes")) var classes: String?
    @Option(help: help("label_column")) var labelColumn: Int?
    @Option(help: help("labels")) var labels: LabelKind?
    @Option(help: help("eta")) var eta: Double = 0
    @Option(help: help("activation")) var activation: ActivationKind = .relu
    @Option(help: help("trainer")) var trainer: TrainerKind = .adam
    @Option(help: help("lr")) var lr: Double?
    @Option(help: help("max_steps")) var maxSteps: Int = CellParameters.defaultMaxSteps
    @Option(help: help("target_mse")) var targetMse: Double = CellParameters.defaultTargetMSE
    @Option(help: help("n_test")) var nTest: Int = CellParameters.defaultTestPoints
    @Option(help: "OpenBLAS threads for this cell.") var threads: Int = 1

    var parameters: CellParameters {
        CellParameters(
            n: n,
            d: d,
            width: width,
            seed: seed,
            data: data,
            dataFile: dataFile,
            labelFile: labelFile,
            classes: classes.map { $0.split(separator: ",").map { String($0).trimmed } },
            labelColumn: labelColumn,
            labels: labels,
            eta: eta,
            activation: activation,
            trainer: trainer,
            lr: lr,
            maxSteps: maxSteps,
            targetMSE: targetMse,
            nTest: nTest
        )
    }

    func validate() throws {
        guard threads >= 1 && threads <= 256 else {
            throw ValidationError("--threads must be between 1 and 256 (got \(threads))")
        }
        do {
            try parameters.validate()
        } catch {
            throw ValidationError(error.message)
        }
    }
}

extension String {
    var trimmed: String {
        var s = Substring(self)
        while s.first?.isWhitespace == true { s.removeFirst() }
        while s.last?.isWhitespace == true { s.removeLast() }
        return String(s)
    }
}
