import Foundation

/// Plain text out of plain, Markdown or HTML sources, remembering for every extracted scalar
/// where it came from in the source, and the headings that give chunks their context.
struct ExtractedText {
    enum Format: String {
        case plain, markdown, html
    }

    var scalars: [Unicode.Scalar] = []
    /// `origin[i]` is the source offset (in Unicode scalars) of `scalars[i]`.
    var origin: [Int] = []
    /// Headings by the extracted offset they start at, in order.
    var headings: [(start: Int, title: String)] = []

    mutating func append(_ scalar: Unicode.Scalar, from offset: Int) {
        scalars.append(scalar)
        origin.append(offset)
    }

    /// The heading in force at extracted offset `position`.
    func heading(at position: Int) -> String? {
        headings.last { $0.start <= position }?.title
    }

    /// The format a document declares (`metadata.content_type`, `source` extension) or shows.
    static func format(of text: String, contentType: String?, source: String?) -> Format {
        let declared = (contentType ?? "").lowercased()
        if declared.contains("html") { return .html }
        if declared.contains("markdown") { return .markdown }
        if declared.contains("plain") { return .plain }
        let path = (source ?? "").lowercased()
        if path.hasSuffix(".html") || path.hasSuffix(".htm") { return .html }
        if path.hasSuffix(".md") || path.hasSuffix(".markdown") { return .markdown }
        let head = text.prefix(2048).lowercased()
        if head.contains("<html") || head.contains("<body") || head.contains("<p>") || head.contains("<div") { return .html }
        if text.split(separator: "\n").contains(where: { $0.hasPrefix("# ") || $0.hasPrefix("## ") }) { return .markdown }
        return .plain
    }

    static func extract(_ text: String, format: Format) -> ExtractedText {
        let source = Array(text.unicodeScalars)
        switch format {
        case .plain:
            var result = ExtractedText()
            for (offset, scalar) in source.enumerated() { result.append(scalar, from: offset) }
            return result
        case .markdown:
            return markdown(source)
        case .html:
            return html(source)
        }
    }

    /// Headings become context (and stay in the text); emphasis, code marks and link targets go.
    private static func markdown(_ source: [Unicode.Scalar]) -> ExtractedText {
        var result = ExtractedText()
        var lineStart = 0
        while lineStart < source.count {
            var lineEnd = lineStart
            while lineEnd < source.count, source[lineEnd] != "\n" { lineEnd += 1 }
            var index = lineStart
            var level = 0
            while index < lineEnd, source[index] == "#", level < 7 {
                level += 1
                index += 1
            }
            if level >= 1, level <= 6, index < lineEnd, source[index] == " " {
                index += 1
                let title = String(String.UnicodeScalarView(source[index..<lineEnd])).trimmingCharacters(in: .whitespaces)
                result.headings.append((result.scalars.count, title))
            } else {
                index = lineStart
            }
            var inLinkTarget = false
            var inCode = false
            func isWordCharacter(_ position: Int) -> Bool {
                guard position >= lineStart, position < lineEnd else { return false }
                let properties = source[position].properties
                return properties.isAlphabetic || properties.numericType != nil
            }
            while index < lineEnd {
                let scalar = source[index]
                if scalar == "`" {
                    inCode.toggle()
                } else if inCode {
                    result.append(scalar, from: index)
                } else if inLinkTarget {
                    if scalar == ")" { inLinkTarget = false }
                } else if scalar == "]", index + 1 < lineEnd, source[index + 1] == "(" {
                    inLinkTarget = true
                    index += 1
                } else if scalar == "_", isWordCharacter(index - 1), isWordCharacter(index + 1) {
                    // snake_case stays; only emphasis underscores at word edges go.
                    result.append(scalar, from: index)
                } else if !["*", "_", "["].contains(scalar) {
                    result.append(scalar, from: index)
                }
                index += 1
            }
            if lineEnd < source.count { result.append("\n", from: lineEnd) }
            lineStart = lineEnd + 1
        }
        return result
    }

    /// Tags go (block tags become line breaks), script and style content goes, a few entities
    /// are decoded, and h1–h6 text becomes heading context.
    private static func html(_ source: [Unicode.Scalar]) -> ExtractedText {
        var result = ExtractedText()
        let blocks: Set<String> = ["p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "article", "h1", "h2", "h3", "h4", "h5", "h6", "title", "header", "footer", "blockquote", "pre"]
        let entities: [String: Unicode.Scalar] = ["amp": "&", "lt": "<", "gt": ">", "quot": "\"", "#39": "'", "apos": "'", "nbsp": " "]
        var index = 0
        var skipping: String?
        var headingStart: Int?
        while index < source.count {
            let scalar = source[index]
            if scalar == "<" {
                var end = index + 1
                while end < source.count, source[end] != ">" { end += 1 }
                let inside = String(String.UnicodeScalarView(source[(index + 1)..<min(end, source.count)])).lowercased()
                let closing = inside.hasPrefix("/")
                let name = String(inside.drop { $0 == "/" }.prefix { $0.isLetter || $0.isNumber })
                if let tag = skipping {
                    if closing, name == tag { skipping = nil }
                } else if name == "script" || name == "style", !closing {
                    skipping = name
                } else if blocks.contains(name) {
                    if name.count == 2, name.hasPrefix("h"), name.last!.isNumber {
                        if closing, let start = headingStart {
                            let title = String(String.UnicodeScalarView(result.scalars[start...])).trimmingCharacters(in: .whitespacesAndNewlines)
                            if !title.isEmpty { result.headings.append((start, title)) }
                            headingStart = nil
                        } else if !closing {
                            if result.scalars.last != "\n", !result.scalars.isEmpty { result.append("\n", from: index) }
                            headingStart = result.scalars.count
                            index = end + 1
                            continue
                        }
                    }
                    if result.scalars.last != "\n", !result.scalars.isEmpty { result.append("\n", from: index) }
                }
                index = end + 1
                continue
            }
            if skipping != nil {
                index += 1
                continue
            }
            if scalar == "&" {
                var end = index + 1
                while end < source.count, end - index <= 8, source[end] != ";" { end += 1 }
                if end < source.count, source[end] == ";",
                   let decoded = entities[String(String.UnicodeScalarView(source[(index + 1)..<end]))] {
                    result.append(decoded, from: index)
                    index = end + 1
                    continue
                }
            }
            result.append(scalar, from: index)
            index += 1
        }
        return result
    }
}
