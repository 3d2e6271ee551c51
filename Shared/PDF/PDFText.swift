import CPoppler

/// The text of a PDF, page by page, through poppler's GLib library. Synchronous and CPU-bound:
/// callers run it on threads of their own (`EngineExecutor`), never on the cooperative pool.
public enum PDFText {
    public struct Page: Sendable, Hashable {
        /// From 1.
        public var number: Int
        public var text: String
    }

    public enum Failure: Error, Sendable, Equatable, CustomStringConvertible {
        /// The file needs a password.
        case encrypted
        /// Not a PDF poppler can read, with its reason.
        case unreadable(String)
        case tooManyPages(Int)

        public var description: String {
            switch self {
            case .encrypted: "the PDF is encrypted (it needs a password)"
            case .unreadable(let reason): "the PDF cannot be read: \(reason)"
            case .tooManyPages(let count): "the PDF has \(count) pages, more than \(PDFText.maxPages)"
            }
        }
    }

    public static let maxPages = 2000

    public static func pages(of bytes: [UInt8]) throws(Failure) -> [Page] {
        guard !bytes.isEmpty else { throw .unreadable("the file is empty") }
        let data = bytes.withUnsafeBytes { g_bytes_new($0.baseAddress, gsize($0.count)) }
        defer { g_bytes_unref(data) }
        var error: UnsafeMutablePointer<GError>?
        guard let document = poppler_document_new_from_bytes(data, nil, &error) else {
            defer { if let error { g_error_free(error) } }
            if conduit_poppler_is_encrypted(error) != 0 { throw .encrypted }
            throw .unreadable(error.flatMap { $0.pointee.message.map { String(cString: $0) } } ?? "unknown error")
        }
        defer { g_object_unref(UnsafeMutableRawPointer(document)) }
        let count = Int(poppler_document_get_n_pages(document))
        guard count <= maxPages else { throw .tooManyPages(count) }
        var pages: [Page] = []
        pages.reserveCapacity(count)
        for index in 0..<count {
            guard let page = poppler_document_get_page(document, Int32(index)) else { continue }
            defer { g_object_unref(UnsafeMutableRawPointer(page)) }
            var text = ""
            if let raw = poppler_page_get_text(page) {
                text = String(cString: raw)
                g_free(raw)
            }
            pages.append(Page(number: index + 1, text: text))
        }
        return pages
    }
}
