import ConduitProtocol
import Foundation
import SearchEngine
import Testing

struct MetadataFilterTests {
    static func filter(_ json: String) throws -> MetadataFilter {
        try JSONDecoder().decode(MetadataFilter.self, from: Data(json.utf8))
    }

    let paper: [String: JSONValue] = [
        "lang": .string("en"), "year": .number(2021), "tags": .array([.string("ml"), .string("search")]),
        "published": .string("2021-06-15T12:00:00Z"), "draft": .bool(false), "editor": .null,
    ]

    @Test func equalsMatchesScalarsNumbersByValueAndListElements() throws {
        #expect(try Self.filter(#"{"field":"lang","eq":"en"}"#).matches(paper))
        #expect(try !Self.filter(#"{"field":"lang","eq":"de"}"#).matches(paper))
        #expect(try Self.filter(#"{"field":"year","eq":2021.0}"#).matches(paper))
        #expect(try Self.filter(#"{"field":"tags","eq":"ml"}"#).matches(paper))
        #expect(try Self.filter(#"{"field":"draft","eq":false}"#).matches(paper))
        #expect(try !Self.filter(#"{"field":"missing","eq":"x"}"#).matches(paper))
        // The same instant written in another zone is equal.
        #expect(try Self.filter(#"{"field":"published","eq":"2021-06-15T14:00:00+02:00"}"#).matches(paper))
    }

    @Test func inMatchesAnyOption() throws {
        #expect(try Self.filter(#"{"field":"lang","in":["fr","en"]}"#).matches(paper))
        #expect(try !Self.filter(#"{"field":"lang","in":["fr","de"]}"#).matches(paper))
        #expect(try Self.filter(#"{"field":"tags","in":["search","nlp"]}"#).matches(paper))
    }

    @Test func rangesOnNumbersAndDatesHonourTheirBounds() throws {
        #expect(try Self.filter(#"{"field":"year","gte":2021,"lt":2022}"#).matches(paper))
        #expect(try !Self.filter(#"{"field":"year","gt":2021}"#).matches(paper))
        #expect(try Self.filter(#"{"field":"year","lte":2021}"#).matches(paper))
        #expect(try !Self.filter(#"{"field":"year","lt":2021}"#).matches(paper))
        #expect(try Self.filter(#"{"field":"published","gte":"2021-01-01","lt":"2022-01-01"}"#).matches(paper))
        #expect(try !Self.filter(#"{"field":"published","gt":"2021-06-15T12:00:00.5Z"}"#).matches(paper))
        #expect(try Self.filter(#"{"field":"published","lt":"2021-06-15T12:00:01Z"}"#).matches(paper))
        // A date bound never matches a value that is not a date, nor a string a number.
        #expect(try !Self.filter(#"{"field":"lang","gte":"2020-01-01"}"#).matches(paper))
    }

    @Test func existsTreatsNullAsAbsent() throws {
        #expect(try Self.filter(#"{"field":"lang","exists":true}"#).matches(paper))
        #expect(try Self.filter(#"{"field":"editor","exists":false}"#).matches(paper))
        #expect(try Self.filter(#"{"field":"nowhere","exists":false}"#).matches(paper))
    }

    @Test func combinatorsNest() throws {
        let filter = try Self.filter(#"""
            {"and":[{"field":"lang","eq":"en"},
                    {"or":[{"field":"year","lt":2000},{"field":"tags","eq":"search"}]},
                    {"not":{"field":"draft","eq":true}}]}
            """#)
        #expect(filter.matches(paper))
        var draft = paper
        draft["draft"] = .bool(true)
        #expect(!filter.matches(draft))
        #expect(try Self.filter(#"{"or":[]}"#).matches(paper) == false)
        #expect(try Self.filter(#"{"and":[]}"#).matches(paper))
    }

    @Test func badFiltersSayWhatIsWrong() {
        func message(_ json: String) -> String {
            do {
                _ = try Self.filter(json)
                return "accepted"
            } catch DecodingError.dataCorrupted(let context) {
                return context.debugDescription
            } catch {
                return "\(error)"
            }
        }
        #expect(message(#"{"field":"x","like":"y"}"#).contains("unknown filter operator 'like'"))
        #expect(message(#"{"field":"x"}"#).contains("has no operator"))
        #expect(message(#"{"eq":"y"}"#).contains("a filter is"))
        #expect(message(#"{"field":"x","gte":"soon"}"#).contains("ISO 8601"))
        #expect(message(#"{"and":[],"field":"x"}"#).contains("only key"))
        #expect(message(#"{"field":"x","eq":1,"in":[1]}"#).contains("cannot be combined"))
        #expect(message(#"{"field":"x","gt":1,"gte":2}"#).contains("one lower"))
        // Metadata holds no objects (they are flattened to dotted keys), so no filter compares one.
        #expect(message(#"{"field":"x","eq":{"a":1}}"#).contains("metadata values are"))
        #expect(message(#"{"field":"x","in":[1,[{"a":1}]]}"#).contains("metadata values are"))
        #expect(message(#"{"field":"x","in":[1,[2,3]]}"#) == "accepted")
    }
}
