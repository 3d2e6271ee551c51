import Foundation
import ConduitProtocol
import Prompts

// bench-prompts-stats [EXPERIMENTS]: the experiment statistics on simulations, the same code the
// registry's experiment page runs. Prints one line:
//   ab_power_100=…        share of 0.5-vs-0.9 experiments decided within 100 trials per variant
//   aa_false_positive=…   share of A/A experiments (0.5 vs 0.5, 1,000 trials per variant) ever
//                         declared different, looking after every trial
//   render_p50_us=… render_p99_us=…  rendering a compiled chat prompt in process

/// SplitMix64, seeded: the same simulations every run.
struct Seeded: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

func decided(_ control: Double, _ treatment: Double, trials: Int, using generator: inout Seeded) -> Bool {
    var successes = (0, 0)
    for trial in 1...trials {
        if Double.random(in: 0..<1, using: &generator) < control { successes.0 += 1 }
        if Double.random(in: 0..<1, using: &generator) < treatment { successes.1 += 1 }
        if ExperimentStatistics.compare(control: OutcomeSummary(successes: successes.0, of: trial),
                                        treatment: OutcomeSummary(successes: successes.1, of: trial), binary: true).significant {
            return true
        }
    }
    return false
}

let experiments = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1000 : 1000
var generator = Seeded(state: 2026)
let power = Double((0..<experiments).filter { _ in decided(0.5, 0.9, trials: 100, using: &generator) }.count) / Double(experiments)
let falsePositive = Double((0..<experiments).filter { _ in decided(0.5, 0.5, trials: 1000, using: &generator) }.count) / Double(experiments)

let version = PromptVersion(name: "bench", version: 1, body: .chat([
    .message(role: "system", content: "You help {{customer}} with {{product}}.{{#vip}} They are a VIP.{{/vip}}"),
    .placeholder(name: "history"),
    .message(role: "user", content: "{{question}}"),
]))
let compiled = try await PromptCompiler.compile(version) { _, _ in nil }
let variables: [String: JSONValue] = [
    "customer": "Ann", "product": "Conduit", "vip": true, "question": "How do I start?",
    "history": [["role": "user", "content": "hi"], ["role": "assistant", "content": "hello"]],
]
var timings: [Double] = []
for _ in 0..<20_000 {
    let started = ContinuousClock.now
    _ = try compiled.render(variables)
    timings.append(Double((ContinuousClock.now - started) / .nanoseconds(1)) / 1000)
}
timings.sort()
print(String(format: "ab_power_100=%.3f aa_false_positive=%.3f render_p50_us=%.1f render_p99_us=%.1f",
             power, falsePositive, timings[timings.count / 2], timings[timings.count * 99 / 100]))
