@testable import CostService
import Foundation
import Testing
import TestSupport

/// The forecast against the shipped synthetic series (`deploy/forecast/synthetic-daily-spend.csv`:
/// 14 weeks of a growing spend with a weekday/weekend pattern and 6 % noise).
struct SpendForecastTests {
    static func series() throws -> [Double] {
        let text = try String(contentsOf: TestEnvironment.packageRoot.appendingPathComponent("deploy/forecast/synthetic-daily-spend.csv"), encoding: .utf8)
        return text.split(separator: "\n").dropFirst().compactMap { Double($0.split(separator: ",")[1]) }
    }

    @Test func holtWintersBeatsTheSeasonalNaiveBaselineOnTheShippedSeries() throws {
        let series = try Self.series()
        #expect(series.count == 98)
        // Rolling origins: from 4 weeks of history to 12, a week apart, each forecasting the next 14 days.
        var ours: [Double] = [], baseline: [Double] = []
        for origin in stride(from: 28, through: 84, by: 7) {
            let history = Array(series.prefix(origin)), held = Array(series[origin..<(origin + 14)])
            ours.append(SpendForecast.mape(SpendForecast(history: history).next(14), held))
            baseline.append(SpendForecast.mape(SpendForecast.seasonalNaive(history, 14), held))
        }
        let oursMAPE = ours.reduce(0, +) / Double(ours.count), baselineMAPE = baseline.reduce(0, +) / Double(baseline.count)
        print(String(format: "forecast: holt_winters_mape=%.4f seasonal_naive_mape=%.4f origins=%d", oursMAPE, baselineMAPE, ours.count))
        #expect(oursMAPE < baselineMAPE)
        #expect(oursMAPE < 0.08)
        let forecast = SpendForecast(history: Array(series.prefix(84))).next(14)
        // The weekend dip is forecast where it falls (days 6 and 7 of the held weeks are Sat, Sun).
        #expect(forecast[5] < forecast[0] * 0.6 && forecast[6] < forecast[0] * 0.6)
    }

    @Test func shortHistoriesFallBackAndNothingIsNegative() {
        #expect(SpendForecast(history: []).next(3) == [0, 0, 0])
        #expect(SpendForecast(history: [2, 4]).next(2) == [3, 3])
        let week: [Double] = [1, 2, 3, 4, 5, 6, 7, 1, 2, 3]
        #expect(SpendForecast(history: week).next(4) == [4, 5, 6, 7])
        // A collapsing spend never forecasts below zero.
        let falling = (0..<28).map { Double(28 - $0) * 3 }
        #expect(SpendForecast(history: falling).next(60).allSatisfy { $0 >= 0 })
    }
}
