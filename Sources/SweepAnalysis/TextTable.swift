import Foundation

/// The one markdown and the one HTML renderer of tables of text, for the sweep table, the
/// aggregated table, the fits, the report and the live page.
public enum TextTable {
    /// A markdown table with columns padded to their widest cell.
    public static func markdown(header: [String], rows: [[String]]) -> String {
        let widths = header.indices.map { c in max(header[c].count, rows.map { $0[c].count }.max() ?? 0) }
        func line(_ values: [String]) -> String {
            let padded = zip(values, widths).map { $0 + String(repeating: " ", count: $1 - $0.count) }
            return "| " + padded.joined(separator: " | ") + " |"
        }
        let rule = "|" + widths.map { String(repeating: "-", count: $0 + 2) }.joined(separator: "|") + "|"
        return ([line(header), rule] + rows.map(line)).joined(separator: "\n")
    }

    /// An HTML table, every cell escaped.
    public static func html(header: [String], rows: [[String]]) -> String {
        var html = "<table>\n<tr>" + header.map { "<th>\(escapeHTML($0))</th>" }.joined() + "</tr>\n"
        for row in rows {
            html += "<tr>" + row.map { "<td>\(escapeHTML($0))</td>" }.joined() + "</tr>\n"
        }
        return html + "</table>\n"
    }

    /// CSV lines; a field holding a comma, a quote or a line break is quoted (RFC 4180).
    public static func csv(header: [String], rows: [[String]]) -> String {
        func field(_ text: String) -> String {
            guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" }) else { return text }
            return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return ([header] + rows).map { $0.map(field).joined(separator: ",") }.joined(separator: "\n")
    }
}

/// Text escaped for HTML and SVG, in elements and in attributes (quoted with either quote): the
/// one function every page, table, figure and report passes its values through.
public func escapeHTML(_ text: String) -> String {
    var escaped = ""
    escaped.reserveCapacity(text.utf8.count)
    for character in text {
        switch character {
        case "&": escaped += "&amp;"
        case "<": escaped += "&lt;"
        case ">": escaped += "&gt;"
        case "\"": escaped += "&quot;"
        case "'": escaped += "&#39;"
        default: escaped.append(character)
        }
    }
    return escaped
}
