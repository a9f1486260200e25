/// isosweep's version: the one place it is written (`isosweep --version`, and each worker's HELLO).
public enum IsosweepBuild {
    /// The version string.
    public static let version = "0.1.0"
}
