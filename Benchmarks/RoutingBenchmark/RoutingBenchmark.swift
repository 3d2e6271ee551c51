import Foundation
import Providers
import Routing

/// `bench-routing <catalog.yaml> <labelled-prompts.jsonl> [router]`: the router's classifier and
/// choice over the labelled set, every candidate taken as configured and healthy.
///   - accuracy on the `test` half (the classifier was fitted on `dev`), and on each half;
///   - cost_saved: 1 − (what the chosen models cost) / (what the premium candidate — the one
///     of highest quality — costs) for every prompt, each answer as long as its true
///     complexity expects (`ModelSelector.expectedCompletionTokens`);
///   - underserved: prompts sent to a model below the quality their true complexity needs;
///   - classify_p50_us / _p99_us: the classifier's time per prompt.
@main
struct RoutingBenchmark {
    struct Labelled: Decodable {
        var prompt: String
        var label: String
        var split: String
    }

    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 3 else {
            FileHandle.standardError.write(Data("usage: bench-routing <catalog.yaml> <labelled-prompts.jsonl> [router]\n".utf8))
            exit(2)
        }
        let catalog = try ModelCatalog(yamlFile: arguments[1])
        let name = arguments.count > 3 ? arguments[3] : "auto"
        guard let router = catalog.router(named: name) else { throw CatalogError("no router '\(name)'") }
        let text = try String(contentsOfFile: arguments[2], encoding: .utf8)
        let rows = try text.split(separator: "\n").map { try JSONDecoder().decode(Labelled.self, from: Data($0.utf8)) }
        let candidates = router.candidates.map { ModelSelector.Candidate(model: $0, deployment: catalog.model(named: $0)?.deployments.first, healthy: true) }
        let premium = candidates.compactMap(\.deployment).max { ($0.quality ?? 0) < ($1.quality ?? 0) }!
        let selector = ModelSelector(router: router)
        let classifier = ComplexityClassifier()

        var correct: [String: (Int, Int)] = [:]
        var confusion: [String: Int] = [:]
        var chosenCost = 0.0
        var premiumCost = 0.0
        var underserved = 0
        var timings: [Double] = []
        for row in rows {
            guard let truth = Complexity(rawValue: row.label) else { throw CatalogError("unknown label '\(row.label)'") }
            var verdict = classifier.classify(row.prompt)
            for _ in 0..<50 {
                let start = ContinuousClock.now
                verdict = classifier.classify(row.prompt)
                let elapsed = ContinuousClock.now - start
                timings.append(Double(elapsed.components.attoseconds) / 1e12 + Double(elapsed.components.seconds) * 1e6)
            }
            var tally = correct[row.split] ?? (0, 0)
            tally.1 += 1
            if verdict.complexity == truth { tally.0 += 1 }
            correct[row.split] = tally
            confusion["\(row.label)→\(verdict.complexity.rawValue)", default: 0] += 1

            let prompt = (row.prompt.utf8.count + 2) / 3 + 8
            guard let choice = selector.choose(.init(complexity: verdict, promptTokens: prompt), among: candidates) else { throw CatalogError("no choice") }
            let completion = Double(ModelSelector.expectedCompletionTokens[truth] ?? 256)
            func cost(_ deployment: Deployment) -> Double {
                (Double(prompt) * deployment.prices.input + completion * deployment.prices.output) / 1_000_000
            }
            chosenCost += cost(choice.deployment)
            premiumCost += cost(premium)
            if (choice.deployment.quality ?? 0) < router.quality(for: truth) { underserved += 1 }
        }
        timings.sort()
        func percentile(_ p: Double) -> Double { timings[min(timings.count - 1, Int(Double(timings.count) * p))] }
        func share(_ split: String?) -> Double {
            let tallies = split.map { [correct[$0] ?? (0, 0)] } ?? Array(correct.values)
            let (hits, total) = tallies.reduce((0, 0)) { ($0.0 + $1.0, $0.1 + $1.1) }
            return total == 0 ? 0 : Double(hits) / Double(total)
        }
        let matrix = confusion.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        FileHandle.standardError.write(Data("routing: labelled→classified \(matrix)\n".utf8))
        print(String(
            format: "routing: accuracy=%.3f accuracy_dev=%.3f accuracy_all=%.3f cost_saved=%.3f underserved=%d prompts=%d premium=%@ classify_p50_us=%.1f classify_p99_us=%.1f",
            share("test"), share("dev"), share(nil), premiumCost > 0 ? 1 - chosenCost / premiumCost : 0, underserved, rows.count,
            premium.id, percentile(0.5), percentile(0.99)))
    }
}
