import Foundation
import ConduitProtocol
import Prompts

// bench-prompts-stats [EXPERIMENTS]: the experiment statistics on simulations, the same code the
// registry's experiment page runs. Prints one line:
//   ab_power_100=…        share of 0.5-vs-0.9 experiments decided within 100 trials per variant
//   aa_false_positive=…   share of A/A experiments (0.5 vs 0.5, 1,000 trials per variant) ever
//                         declared different, looking after every trial
//   render_p50_us=… render_p99_us=…  rendering a compiled chat prompt in process

let experiments = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 1000 : 1000
let power = ExperimentSimulation.decidedShare(control: 0.5, treatment: 0.9, trials: 100, experiments: experiments, seed: 2026)
let falsePositive = ExperimentSimulation.decidedShare(control: 0.5, treatment: 0.5, trials: 1000, experiments: experiments, seed: 2027)

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
