import PDF
import Testing
import TestSupport

/// Text out of PDFs, page by page; a damaged or empty file is a clear error, not a crash.
struct PDFTextTests {
    @Test func eachPageGivesItsText() throws {
        let pdf = MiniPDF.make(pages: ["The warranty lasts two years.", "Returns (within thirty days) are free."])
        let pages = try PDFText.pages(of: pdf)
        #expect(pages.map(\.number) == [1, 2])
        #expect(pages[0].text.contains("The warranty lasts two years."))
        #expect(pages[1].text.contains("Returns (within thirty days) are free."))
    }

    @Test func damagedAndEmptyFilesAreRefusedWithAReason() {
        #expect(throws: PDFText.Failure.self) { try PDFText.pages(of: Array("not a pdf at all".utf8)) }
        #expect(throws: PDFText.Failure.unreadable("the file is empty")) { try PDFText.pages(of: []) }
        var truncated = MiniPDF.make(pages: ["Half a document."])
        truncated.removeLast(truncated.count / 2)
        do {
            let pages = try PDFText.pages(of: truncated)
            // Poppler rebuilds what it can of a cut file; what it returns is still the text it found.
            #expect(pages.allSatisfy { !$0.text.contains("\0") })
        } catch {
            #expect(error != .encrypted)
        }
    }
}
