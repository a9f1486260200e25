import Diagnostics
import Testing
import TrainingCore

/// `isosweep train`'s options, read through `CellParameters.catalogue`.
@Suite struct ParameterArgumentsTests {
    @Test func optionsSetTheirParametersAndTheRestKeepTheirDefaults() throws {
        let cell = try CellParameters(arguments: [
            "--n", "64", "--d=8", "--width", "16", "--max-steps", "300", "--activation", "tanh", "--eta", "0.25",
            "--labels", "teacher",
        ])
        var expected = CellParameters(
            n: 64,
            d: 8,
            width: 16,
            labels: .teacher,
            eta: 0.25,
            activation: .tanh,
            maxSteps: 300
        )
        #expect(cell == expected)
        expected.maxSteps = CellParameters.defaultMaxSteps
        #expect(
            try CellParameters(arguments: ["--width", "16", "--d", "8", "--n", "64", "--activation", "tanh"]).maxSteps
                == expected.maxSteps
        )
    }

    @Test(
        arguments: [
            (["--n", "8", "--d", "2"], "--width is required"),
            (["--n", "8", "--d", "2", "--width", "1", "--depth", "3"], "unknown option --depth"),
            (["--n", "8", "--d", "2", "--width"], "--width needs a value: a whole number"),
            (["--n", "8", "--d", "2", "--width", "two"], "--width: expected a whole number, got two"),
            (
                ["--n", "8", "--d", "2", "--width", "1", "--activation", "sigmoid"],
                "expected one of relu, tanh, softplus, got sigmoid"
            ),
            (["--n", "8", "--n", "9", "--d", "2", "--width", "1"], "--n is given twice"),
            (["--n", "8", "--d", "2", "--width", "-3"], "width must be a positive"),
            (["--n", "8", "--d", "2", "--width", "1", "--classes", "a,b,c"], "--classes: expected two class labels"),
            (["--n", "8", "--d", "2", "--width", "1", "--eta", "nan"], "--eta: expected a number"),
        ] as [([String], String)]
    )
    func wrongOptionsAreRefusedWithWhatTheyExpect(_ arguments: [String], _ words: String) {
        do {
            _ = try CellParameters(arguments: arguments)
            Issue.record("accepted \(arguments)")
        } catch {
            #expect(error.code == .invalidParameter && error.description.contains(words), "\(error)")
        }
    }

    @Test func theHelpListsEveryParameterWithItsDefault() {
        let help = CellParameters.argumentsHelp
        for parameter in CellParameters.catalogue { #expect(help.contains(parameter.optionName + " <")) }
        #expect(help.contains("--max-steps <int>") && help.contains("(default: \(CellParameters.defaultMaxSteps))"))
        #expect(help.contains("--activation <relu|tanh|softplus>") && help.contains("(default: relu)"))
        #expect(help.contains("--n <int>") && help.contains("Number of training points. (required)"))
    }
}
