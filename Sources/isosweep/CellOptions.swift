public import ArgumentParser
public import TrainingCore

extension DataKind: ExpressibleByArgument {}
extension LabelKind: ExpressibleByArgument {}
extension ActivationKind: ExpressibleByArgument {}
extension TrainerKind: ExpressibleByArgument {}

/// The parameters of one cell, as command-line options (names as in sweep files, kebab-cased).
struct CellOptions: ParsableArguments {
    @Option(help: "Number of training points.") var n: Int
    @Option(help: "Input dimension (for --data file: the file's number of features).") var d: Int
    @Option(help: "Hidden width k.") var width: Int
    @Option(help: "Seed of the cell's data, labels, initialisation and probes.") var seed: Int = 0
    @Option(help: "Inputs: \(DataKind.allCases.map(\.rawValue).joined(separator: ", ")).") var data: DataKind = .sphere
    @Option(help: "For --data file: a CSV file, or an IDX images file (MNIST).") var dataFile: String?
    @Option(help: "For IDX data: the IDX labels file.") var labelFile: String?
    @Option(help: "For --data file: the two classes kept, comma-separated (first -> -1, second -> +1).")
    var classes: String?
    @Option(help: "For CSV data: zero-based label column (default: last).") var labelColumn: Int?
    @Option(help: "Labels: random (default), teacher, file (default for --data file).") var labels: LabelKind?
    @Option(help: "Label flip probability for teacher and file labels.") var eta: Double = 0
    @Option(help: "Activation: relu, tanh, softplus.") var activation: ActivationKind = .relu
    @Option(help: "Trainer: adam, gd, random_features.") var trainer: TrainerKind = .adam
    @Option(help: "Learning rate (default 0.01 for adam, 0.1 for gd).") var lr: Double?
    @Option(help: "Step budget.") var maxSteps: Int = CellParameters.defaultMaxSteps
    @Option(help: "Stop once the training MSE is at or below this.") var targetMse: Double = CellParameters.defaultTargetMSE
    @Option(help: "Fresh test points (or held-out rows for file data).") var nTest: Int = CellParameters.defaultTestPoints
    @Option(help: "OpenBLAS threads for this cell.") var threads: Int = 1

    var parameters: CellParameters {
        CellParameters(
            n: n, d: d, width: width, seed: seed, data: data, dataFile: dataFile, labelFile: labelFile,
            classes: classes.map { $0.split(separator: ",").map { String($0).trimmed } }, labelColumn: labelColumn,
            labels: labels, eta: eta, activation: activation, trainer: trainer, lr: lr, maxSteps: maxSteps,
            targetMSE: targetMse, nTest: nTest
        )
    }

    func validate() throws {
        guard threads >= 1 && threads <= 256 else { throw ValidationError("--threads must be between 1 and 256 (got \(threads))") }
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
