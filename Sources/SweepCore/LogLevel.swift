/// Severity of a log line that a pure core asks its shell to write; the raw values are
/// swift-log's level names, so shells map it with `Logger.Level(rawValue:)`.
public enum LogLevel: String, Sendable {
    case debug, info, notice, warning, error
}
