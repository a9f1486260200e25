import ArgumentParser
import CommandSupport
import TrainingCore

/// How hard the Lipschitz lower-bound search tries (`lipschitz` and `train`); the defaults are
/// what sweeps use.
struct SearchOptions: ParsableArguments {
    @Option(help: "Fresh probe points.") var freshPoints = LipschitzOptions().freshPoints
    @Option(help: "Best probes improved by gradient-norm ascent.") var ascentStarts = LipschitzOptions().ascentStarts
    @Option(help: "Ascent iterations from each start.") var ascentSteps = LipschitzOptions().ascentSteps

    func validate() throws {
        if freshPoints < 0 || ascentStarts < 0 || ascentSteps < 0 {
            throw ValidationError("--fresh-points, --ascent-starts and --ascent-steps must be non-negative")
        }
    }

    var lipschitz: LipschitzOptions {
        var options = LipschitzOptions()
        options.freshPoints = freshPoints
        options.ascentStarts = ascentStarts
        options.ascentSteps = ascentSteps
        return options
    }
}
