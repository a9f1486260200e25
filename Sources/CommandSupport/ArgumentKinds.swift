public import ArgumentParser
public import TrainingCore

// The training core's choices as command-line values (`--activation tanh`, `--data sphere`).
extension DataKind: ExpressibleByArgument {}
extension ActivationKind: ExpressibleByArgument {}
