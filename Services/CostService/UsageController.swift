import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird

/// `GET /v1/usage?from=YYYY-MM-DD&to=YYYY-MM-DD&group_by=model,key,day[&format=csv]`: the
/// caller's tenant's usage from the daily rollups, as JSON or CSV (`format=csv`, or
/// `Accept: text/csv`).
struct UsageController: Sendable {
    let report: any UsageReport

    struct Answer: Encodable {
        var object = "usage"
        var from: String
        var to: String
        var groupBy: [String]
        var data: [UsageRow]

        enum CodingKeys: String, CodingKey {
            case object, from, to, data
            case groupBy = "group_by"
        }
    }

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.get("/v1/usage") { request, context in try await usage(request, context) }
    }

    func usage(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        var parameters: [String: String] = [:]
        for (name, value) in request.uri.queryParameters { parameters[String(name)] = String(value) }
        let query = try UsageQuery(tenant: try context.callerTenant(), parameters: parameters)
        if let format = parameters["format"], format != "csv", format != "json" {
            throw APIError.invalidRequest("'format' is json or csv.", param: "format")
        }
        let csv = parameters["format"] == "csv" || (parameters["format"] == nil && request.headers[.accept]?.contains("text/csv") == true)
        let rows: [UsageRow]
        do {
            rows = try await report.rows(query)
        } catch UsageReportError.tooManyRows {
            throw APIError.invalidRequest("The answer would hold more than \(UsageQuery.maxRows) groups; narrow 'from'/'to' or group by fewer dimensions.",
                                          param: "group_by")
        }
        guard csv else {
            return try jsonResponse(Answer(from: query.from, to: query.to, groupBy: query.groupBy.map(\.rawValue), data: rows))
        }
        let lines = [UsageRow.csvHeader(query.groupBy)] + rows.map { $0.csvLine(query.groupBy) }
        var headers: HTTPFields = [.contentType: "text/csv; charset=utf-8"]
        headers[.contentDisposition] = "attachment; filename=\"usage-\(query.from)-\(query.to).csv\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: lines.joined(separator: "\r\n") + "\r\n")))
    }
}
