import Foundation
import Testing
@testable import Prompts

/// Sticky weighted assignment and the statistics an experiment's page reports, checked on
/// simulations with a seeded generator (the same numbers every run).
struct ExperimentTests {
    static let assignment = ExperimentAssignment(experiment: "exp-1", variants: [
        .init(name: "control", label: "production", weight: 70), .init(name: "candidate", version: 3, weight: 20),
        .init(name: "other", label: "staging", weight: 10), .init(name: "off", label: "x", weight: 0),
    ])

    @Test func tenThousandUsersSplitWithinTwoPercentOfTheWeightsAndStay() {
        var counts: [String: Int] = [:]
        for user in 0..<10_000 { counts[Self.assignment.variant(for: "user-\(user)")!.name, default: 0] += 1 }
        #expect(abs(Double(counts["control"] ?? 0) / 10_000 - 0.7) <= 0.02)
        #expect(abs(Double(counts["candidate"] ?? 0) / 10_000 - 0.2) <= 0.02)
        #expect(abs(Double(counts["other"] ?? 0) / 10_000 - 0.1) <= 0.02)
        #expect(counts["off"] == nil)
        // A fresh value (another replica, a restart) places every user where it was.
        let again = ExperimentAssignment(experiment: "exp-1", variants: Self.assignment.variants)
        #expect((0..<10_000).allSatisfy { again.variant(for: "user-\($0)") == Self.assignment.variant(for: "user-\($0)") })
        // Another experiment places users independently of this one.
        let other = ExperimentAssignment(experiment: "exp-2", variants: Self.assignment.variants)
        #expect((0..<1000).contains { other.variant(for: "user-\($0)") != Self.assignment.variant(for: "user-\($0)") })
        // The hash is fixed across releases: this user's point is known.
        #expect(abs(ExperimentAssignment.unitInterval(experiment: "exp-1", subject: "user-1") - Self.pointOfUser1) < 1e-12)
    }

    /// SHA-256("exp-1\0user-1"), first 53 bits over 2^53, computed outside Swift (Python hashlib).
    static let pointOfUser1 = 0.7847342603047023

    @Test func halfAgainstNinetyTenthsIsDecidedWithinAHundredTrialsNineTimesInTen() {
        let share = ExperimentSimulation.decidedShare(control: 0.5, treatment: 0.9, trials: 100, experiments: 1000, seed: 15)
        #expect(share >= 0.9, "\(share) of 1000 decided within 100 trials")
    }

    @Test func aaExperimentsPeekedAfterEveryTrialStayBelowFivePercentFalsePositives() {
        let share = ExperimentSimulation.decidedShare(control: 0.5, treatment: 0.5, trials: 1000, experiments: 1000, seed: 16)
        #expect(share <= 0.05, "\(share) of 1000 A/A experiments declared a difference")
    }

    @Test func theSimulationsAreReproducible() {
        var first = ExperimentSimulation.SeededGenerator(seed: 7), second = ExperimentSimulation.SeededGenerator(seed: 7)
        #expect((0..<100).map { _ in first.next() } == (0..<100).map { _ in second.next() })
        #expect(ExperimentSimulation.decidedShare(control: 0.5, treatment: 0.9, trials: 100, experiments: 50, seed: 3)
                == ExperimentSimulation.decidedShare(control: 0.5, treatment: 0.9, trials: 100, experiments: 50, seed: 3))
    }

    @Test func fixedHorizonTestsMatchKnownValues() throws {
        // Two proportions: 45/100 vs 60/100 → z = 2.1240, two-sided p = 0.0337.
        let proportions = ExperimentStatistics.compare(
            control: OutcomeSummary(successes: 45, of: 100), treatment: OutcomeSummary(successes: 60, of: 100), binary: true)
        #expect(abs(proportions.pValue - 0.0337) < 0.0005)
        #expect(abs(proportions.difference - 0.15) < 1e-12 && abs(proportions.lift! - 0.15 / 0.45) < 1e-12)
        let low = try #require(proportions.confidenceLow), high = try #require(proportions.confidenceHigh)
        #expect(low > 0.01 && low < 0.02 && high > 0.28 && high < 0.29)
        // Welch: means 10 vs 12, variances 4 and 9, 20 each → t = 2.4807, df = 33.10, p = 0.0184.
        let welch = ExperimentStatistics.compare(
            control: OutcomeSummary(count: 20, mean: 10, variance: 4), treatment: OutcomeSummary(count: 20, mean: 12, variance: 9), binary: false)
        #expect(abs(welch.pValue - 0.0184) < 0.0005, "\(welch.pValue)")
        // The 95 % interval is 2 ± t(0.975, 33.10) · 0.8062 = 2 ± 1.6402.
        let welchLow = try #require(welch.confidenceLow), welchHigh = try #require(welch.confidenceHigh)
        #expect(abs(welchLow - 0.3598) < 0.002 && abs(welchHigh - 3.6402) < 0.002, "\(welch)")
        // Too few outcomes: nothing is declared, whatever the numbers.
        #expect(!ExperimentStatistics.compare(control: OutcomeSummary(successes: 0, of: 5), treatment: OutcomeSummary(successes: 5, of: 5), binary: true).significant)
    }
}
