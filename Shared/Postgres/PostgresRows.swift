/// The rows a statement returned, copied out of libpq so no C memory outlives the call.
public struct PostgresRows: Sendable, RandomAccessCollection {
    /// Column names in result order.
    public let columns: [String]
    let typeOIDs: [UInt32]
    let values: [[String?]]
    /// Rows inserted, updated or deleted, as the server reports it (0 for other statements).
    public let affectedRows: Int

    public var startIndex: Int { 0 }
    public var endIndex: Int { values.count }
    public subscript(position: Int) -> PostgresRow { PostgresRow(rows: self, index: position) }
}

/// One row of a result; decode columns by position or by name.
public struct PostgresRow: Sendable {
    let rows: PostgresRows
    let index: Int

    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, at column: Int) throws -> T {
        guard column >= 0, column < rows.columns.count else {
            throw PostgresError(.decodingFailed, serverMessage: "no column at index \(column)")
        }
        return try T.decode(PostgresCell(columnName: rows.columns[column], typeOID: rows.typeOIDs[column], text: rows.values[index][column]))
    }

    public func decode<T: PostgresDecodable>(_ type: T.Type = T.self, column name: String) throws -> T {
        guard let column = rows.columns.firstIndex(of: name) else {
            throw PostgresError(.decodingFailed, serverMessage: "no column named \(name)")
        }
        return try decode(type, at: column)
    }
}
