import ConduitKit
import ConduitProtocol
import Foundation
import HTTPTypes
import Hummingbird

/// `POST /v1/documents` (one document or `{"documents":[…]}`) and
/// `DELETE /v1/documents/{collection}/{doc_id}`: indexing requests for the caller's
/// tenant. The answer (202, with each event's key) comes only once the broker has acknowledged
/// every event, so an accepted document is never lost; the embedder and retriever then index it.
struct DocumentsController: Sendable {
    let queue: any IndexingQueue
    /// Documents per request at most.
    var maxBatch = 1000
    /// The longest document text, in Unicode characters: the embedder's limit
    /// (`CONDUIT_EMBEDDER_MAX_DOCUMENT_CHARS`), checked here so that what is accepted is indexed.
    var maxDocumentCharacters = 1_000_000

    struct Document: Decodable {
        var collection: String
        var docID: String
        var text: String
        var metadata: [String: JSONValue]?
        var source: String?

        enum CodingKeys: String, CodingKey {
            case collection, text, metadata, source
            case docID = "doc_id"
        }
    }

    struct Batch: Decodable {
        var documents: [Document]
    }

    struct Accepted: Encodable {
        var object = "indexing_request"
        var op: String
        var collection: String
        var docID: String
        var key: String

        enum CodingKeys: String, CodingKey {
            case object, op, collection, key
            case docID = "doc_id"
        }
    }

    func addRoutes(to router: some RouterMethods<ConduitRequestContext>) {
        router.post("/v1/documents") { request, context in
            try ForwardingController.allow(.writeDocuments, context)
            return try await upsert(request, context)
        }
        router.delete("/v1/documents/:collection/:doc_id") { _, context in
            try ForwardingController.allow(.writeDocuments, context)
            return try await delete(context)
        }
    }

    func upsert(_ request: Request, _ context: ConduitRequestContext) async throws -> Response {
        let tenant = try context.callerTenant()
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let data = Data(buffer.readableBytesView)
        let documents: [Document]
        let isBatch = (JSONValue.parse(data)?["documents"]) != nil
        if isBatch {
            documents = try JSONDecoder().decode(Batch.self, from: data).documents
            guard !documents.isEmpty, documents.count <= maxBatch else {
                throw APIError.invalidRequest("'documents' must hold 1 to \(maxBatch) documents.", param: "documents")
            }
        } else {
            documents = [try JSONDecoder().decode(Document.self, from: data)]
        }
        for (index, document) in documents.enumerated() {
            let prefix = isBatch ? "documents[\(index)]." : ""
            try Self.validate(collection: document.collection, docID: document.docID, param: prefix)
            guard !document.text.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else {
                throw APIError.invalidRequest("'text' must not be empty.", param: prefix + "text")
            }
            guard document.text.unicodeScalars.count <= maxDocumentCharacters else {
                throw APIError(status: .contentTooLarge, type: .invalidRequest,
                               message: "'text' has \(document.text.unicodeScalars.count) characters; a document holds at most \(maxDocumentCharacters). Split it into several documents.",
                               param: prefix + "text", code: "document_too_large")
            }
        }
        let events = documents.map {
            IndexingRequest(op: .upsert, tenant: tenant, collection: $0.collection, docID: $0.docID, text: $0.text, metadata: $0.metadata, source: $0.source)
        }
        try await publish(events)
        let accepted = events.map { Accepted(op: "upsert", collection: $0.collection, docID: $0.docID, key: $0.key) }
        return isBatch ? try jsonResponse(["data": accepted], status: .accepted) : try jsonResponse(accepted[0], status: .accepted)
    }

    func delete(_ context: ConduitRequestContext) async throws -> Response {
        let tenant = try context.callerTenant()
        let collection = try context.pathParameter("collection")
        let docID = try context.pathParameter("doc_id")
        try Self.validate(collection: collection, docID: docID, param: "")
        let event = IndexingRequest(op: .delete, tenant: tenant, collection: collection, docID: docID)
        try await publish([event])
        return try jsonResponse(Accepted(op: "delete", collection: collection, docID: docID, key: event.key), status: .accepted)
    }

    private func publish(_ events: [IndexingRequest]) async throws {
        do {
            try await queue.enqueue(events)
        } catch IndexingQueueError.tooLarge {
            throw APIError(status: .contentTooLarge, type: .invalidRequest,
                           message: "The broker refused a document as too large for one message; nothing was accepted. Send a shorter document, or raise the broker's message limit (see the README).",
                           code: "document_too_large")
        } catch {
            throw APIError.serviceUnavailable("The documents could not be queued for indexing; nothing was accepted. Try again.")
        }
    }

    /// Collection names are path segments and key parts (`Identifier.collection`); document ids
    /// may hold any character but a line break (they are escaped wherever they travel).
    static func validate(collection: String, docID: String, param prefix: String) throws {
        guard Identifier.collection.isValid(collection) else {
            throw APIError.invalidRequest("'collection' must be \(Identifier.collection.rule).", param: prefix + "collection")
        }
        guard (1...512).contains(docID.count), !docID.contains(where: { $0.isNewline }) else {
            throw APIError.invalidRequest("'doc_id' must be 1 to 512 characters on one line.", param: prefix + "doc_id")
        }
    }
}
