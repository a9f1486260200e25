import TrainingCore

/// TrainingCore's science version, re-exported for the protocol.
let scienceVersionOfTrainingCore = scienceVersion
