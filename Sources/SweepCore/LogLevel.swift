/// Severity of a log line that a pure core asks its shell to write.
public enum LogLevel: String, Sendable {
    case debug, info, notice, warning, error
}
