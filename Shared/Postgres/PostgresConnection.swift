import CLibPQ
import Foundation

/// One libpq connection. Every method blocks, so callers run them on the client's thread pool.
///
/// `@unchecked Sendable`: a connection is reachable only by the task that leased it from the pool,
/// which runs one blocking call at a time; the pool lock orders the hand-off between leaseholders,
/// so the `PGconn` is never used by two threads at once (libpq allows that, sequentially).
final class PostgresConnection: @unchecked Sendable {
    private var handle: OpaquePointer?
    private let parameters: [(String, String)]

    init(parameters: [(String, String)]) {
        self.parameters = parameters
    }

    deinit {
        if let handle { PQfinish(handle) }
    }

    /// Opens the connection (blocking, bounded by `connect_timeout`).
    func connect() throws {
        if let handle { PQfinish(handle); self.handle = nil }
        let keywords = parameters.map { strdup($0.0) } + [nil]
        let values = parameters.map { strdup($0.1) } + [nil]
        defer { (keywords + values).forEach { free($0) } }
        let connection = keywords.map { UnsafePointer($0) }.withUnsafeBufferPointer { keywordPointers in
            values.map { UnsafePointer($0) }.withUnsafeBufferPointer { valuePointers in
                PQconnectdbParams(keywordPointers.baseAddress, valuePointers.baseAddress, 0)
            }
        }
        guard let connection else { throw PostgresError(.connectionFailed, serverMessage: "out of memory") }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(connection))
            PQfinish(connection)
            throw PostgresError(.connectionFailed, serverMessage: message)
        }
        // libpq prints NOTICEs to stderr by default; they carry nothing we act on.
        PQsetNoticeProcessor(connection, { _, _ in }, nil)
        handle = connection
    }

    /// True when the connection can take a statement. A server restart leaves the socket readable
    /// with EOF and a FATAL message before any statement fails, so look at the socket first.
    var isUsable: Bool {
        guard let handle, PQstatus(handle) == CONNECTION_OK else { return false }
        var poller = pollfd(fd: PQsocket(handle), events: Int16(POLLIN), revents: 0)
        if poll(&poller, 1, 0) > 0 {
            if PQconsumeInput(handle) == 0 { return false }
            var peek: UInt8 = 0
            if recv(poller.fd, &peek, 1, Int32(MSG_PEEK | MSG_DONTWAIT)) == 0 { return false }
        }
        return PQstatus(handle) == CONNECTION_OK
    }

    /// Open and outside any transaction: safe to hand to the next leaseholder. Does not block.
    var isIdleAndOpen: Bool {
        guard let handle else { return false }
        return PQstatus(handle) == CONNECTION_OK && PQtransactionStatus(handle) == PQTRANS_IDLE
    }

    /// Runs one parameterized statement.
    func execute(_ sql: String, _ binds: [PostgresBind]) throws -> PostgresRows {
        guard let handle else { throw PostgresError(.connectionLost) }
        var cValues: [UnsafeMutablePointer<CChar>?] = []
        var lengths: [Int32] = []
        var formats: [Int32] = []
        var types: [Oid] = []
        defer { cValues.forEach { free($0) } }
        for bind in binds {
            switch bind.storage {
            case .null:
                cValues.append(nil); lengths.append(0); formats.append(0); types.append(0)
            case .text(let text):
                cValues.append(strdup(text)); lengths.append(0); formats.append(0); types.append(0)
            case .binary(let bytes, let oid):
                let buffer = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
                bytes.withUnsafeBytes { raw in
                    if let base = raw.baseAddress { memcpy(buffer, base, bytes.count) }
                }
                cValues.append(buffer); lengths.append(Int32(bytes.count)); formats.append(1); types.append(oid)
            }
        }
        let result = cValues.map { UnsafePointer($0) }.withUnsafeBufferPointer { valuePointers in
            PQexecParams(handle, sql, Int32(binds.count), types, valuePointers.baseAddress, lengths, formats, 0)
        }
        return try consume(result)
    }

    /// Runs a script of one or more statements without parameters (migrations).
    func executeScript(_ sql: String) throws {
        guard let handle else { throw PostgresError(.connectionLost) }
        _ = try consume(PQexec(handle, sql))
    }

    private func consume(_ result: OpaquePointer?) throws -> PostgresRows {
        guard let result else {
            throw PostgresError(.connectionLost, serverMessage: handle.map { String(cString: PQerrorMessage($0)) })
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK, PGRES_TUPLES_OK, PGRES_EMPTY_QUERY:
            break
        default:
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message = PQresultErrorField(result, Int32(UInt8(ascii: "M"))).map { String(cString: $0) }
            if sqlState == nil, let handle, PQstatus(handle) != CONNECTION_OK {
                throw PostgresError(.connectionLost, serverMessage: String(cString: PQerrorMessage(handle)))
            }
            throw PostgresError(.queryFailed, sqlState: sqlState, serverMessage: message)
        }
        let columnCount = Int(PQnfields(result))
        let rowCount = Int(PQntuples(result))
        let columns = (0..<columnCount).map { String(cString: PQfname(result, Int32($0))) }
        let types = (0..<columnCount).map { UInt32(PQftype(result, Int32($0))) }
        var values: [[String?]] = []
        values.reserveCapacity(rowCount)
        for row in 0..<rowCount {
            values.append((0..<columnCount).map { column in
                PQgetisnull(result, Int32(row), Int32(column)) == 1
                    ? nil : String(cString: PQgetvalue(result, Int32(row), Int32(column)))
            })
        }
        let affected = Int(String(cString: PQcmdTuples(result))) ?? 0
        return PostgresRows(columns: columns, typeOIDs: types, values: values, affectedRows: affected)
    }
}
