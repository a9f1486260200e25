import GRDB
import GRDBSQLite

/// A value bound to a statement parameter without GRDB's boxing of every argument: the commit
/// path binds four statements per cell, tens of thousands of times a second.
enum Bound {
    case text(String)
    /// UTF-8 bytes bound as text (a result's JSON as it arrived).
    case utf8([UInt8])
    case integer(Int64)
    case real(Double)
    case null
}

extension Statement {
    /// Runs this statement (one that returns no rows) with `values` bound to its parameters.
    func run(_ values: Bound...) throws {
        let statement = sqliteStatement
        sqlite3_reset(statement)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let code: Int32
            switch value {
            case .text(var text):
                code = text.withUTF8 { sqlite3_bind_text(statement, index, $0.baseAddress, Int32($0.count), transient) }
            case .utf8(let bytes):
                code = bytes.withUnsafeBufferPointer {
                    sqlite3_bind_text(
                        statement,
                        index,
                        UnsafeRawPointer($0.baseAddress ?? UnsafePointer(bitPattern: 1)!)
                            .assumingMemoryBound(to: CChar.self),
                        Int32($0.count),
                        transient
                    )
                }
            case .integer(let number): code = sqlite3_bind_int64(statement, index, number)
            case .real(let number): code = sqlite3_bind_double(statement, index, number)
            case .null: code = sqlite3_bind_null(statement, index)
            }
            guard code == SQLITE_OK else { throw failure(code) }
        }
        let code = sqlite3_step(statement)
        sqlite3_reset(statement)
        guard code == SQLITE_DONE else { throw failure(code) }
    }

    private func failure(_ code: Int32) -> DatabaseError {
        DatabaseError(
            resultCode: ResultCode(rawValue: code),
            message: String(cString: sqlite3_errmsg(sqlite3_db_handle(sqliteStatement))),
            sql: sql
        )
    }
}

/// SQLite copies the bytes before the call returns.
private let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
