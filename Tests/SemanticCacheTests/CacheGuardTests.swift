import SemanticCache
import Testing

/// Pairs of questions an embedding puts close together: the guard lets rewordings through and
/// refuses the pairs whose answers differ.
struct CacheGuardTests {
    @Test(arguments: [
        ("How do I enable 2FA?", "How can I enable 2FA?"),
        ("What is the capital of France?", "what is the capital of France"),
        ("How do I reset my password?", "How can I reset my password?"),
        ("Summarise the report about Kafka lag.", "Please summarise the report about Kafka lag"),
        ("Why can't I log in?", "Why can't I sign in?"),
    ])
    func rewordingsPass(question: String, cached: String) {
        #expect(CacheGuard.check(question, against: cached) == nil)
    }

    @Test(arguments: [
        ("How do I enable 2FA?", "How do I disable 2FA?"),
        ("Show the top 5 products", "Show the top 10 products"),
        ("Show the top five products", "Show the top 10 products"),
        ("Flights from Paris to Berlin", "Flights from Paris to Rome"),
        ("Search for \"red shoes\"", "Search for \"blue shoes\""),
        ("Is the API rate limited?", "Is the API not rate limited?"),
        ("Can I use it without a key?", "Can I use it with a key?"),
        ("Why can't I log in?", "Why can I log in?"),
        ("Connect the printer", "Disconnect the printer"),
        ("List the oldest invoices", "List the newest invoices"),
        ("What did AWS announce?", "What did GCP announce?"),
    ])
    func differencesThatChangeTheAnswerAreRefused(question: String, cached: String) {
        #expect(CacheGuard.check(question, against: cached) != nil, "\(question) | \(cached)")
        #expect(CacheGuard.check(cached, against: question) != nil, "symmetric: \(cached) | \(question)")
    }

    @Test func theRejectionSaysWhy() {
        #expect(CacheGuard.check("top 5", against: "top 10")?.reason == "numbers differ")
        #expect(CacheGuard.check("is it on", against: "is it not on")?.reason == "negation differs")
        #expect(CacheGuard.check("search for 'red'", against: "search for 'blue'")?.reason == "quoted strings differ")
    }
}
