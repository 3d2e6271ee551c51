import Foundation

/// One variant's outcomes on one metric: how many, their mean and sample variance. A binary
/// outcome (thumbs up, an error) is a mean of 0s and 1s.
public struct OutcomeSummary: Sendable, Hashable, Codable {
    public var count: Int
    public var mean: Double
    public var variance: Double

    public init(count: Int, mean: Double, variance: Double) {
        self.count = count
        self.mean = mean
        self.variance = variance
    }

    /// `successes` of `count` binary outcomes.
    public init(successes: Int, of count: Int) {
        self.count = count
        mean = count > 0 ? Double(successes) / Double(count) : 0
        variance = count > 1 ? mean * (1 - mean) * Double(count) / Double(count - 1) : 0
    }
}

/// A treatment variant against the control on one metric: the difference with a confidence
/// interval and a fixed-horizon p-value (two proportions for binary outcomes, Welch's t for
/// continuous ones), and the sequential decision that stays valid however often it is looked at.
public struct VariantComparison: Sendable, Hashable, Codable {
    /// Treatment mean − control mean.
    public var difference: Double
    /// `difference` ÷ control mean; nil when the control's mean is 0.
    public var lift: Double?
    /// The 95 % interval of `difference` (for `alpha` 0.05); nil until both variants have two outcomes.
    public var confidenceLow: Double?
    public var confidenceHigh: Double?
    /// Fixed-horizon two-sided p-value: right only when read once, at a size fixed in advance.
    public var pValue: Double
    /// Always-valid p-value of the mixture sequential probability ratio test (mSPRT): the
    /// chance of ever seeing evidence this strong with no true difference. Deciding when it is
    /// below `alpha` keeps false positives below `alpha` even when it is read after every trial.
    public var sequentialPValue: Double
    /// `sequentialPValue ≤ alpha`, with both variants past the minimum sample.
    public var significant: Bool

    enum CodingKeys: String, CodingKey {
        case difference, lift, significant
        case confidenceLow = "ci_low"
        case confidenceHigh = "ci_high"
        case pValue = "p_value"
        case sequentialPValue = "sequential_p_value"
    }
}

public enum ExperimentStatistics {
    /// The mixture's spread for the difference of two binary means: effects around 0.1 (the
    /// prior's standard deviation), tuned by simulation for power at 100 trials per variant
    /// with false positives below 5 % when peeking every trial (see the prompts tests).
    public static let binaryMixtureVariance = 0.01
    /// For continuous outcomes the mixture's spread is relative: effects around 0.2 standard
    /// deviations of the outcome.
    public static let relativeMixtureVariance = 0.04
    /// Below this many outcomes in either variant nothing is declared (the variance estimates
    /// are too rough to trust).
    public static let minimumSample = 10

    public static func compare(control: OutcomeSummary, treatment: OutcomeSummary, binary: Bool, alpha: Double = 0.05) -> VariantComparison {
        let difference = treatment.mean - control.mean
        let lift = control.mean != 0 ? difference / abs(control.mean) : nil
        guard control.count >= 2, treatment.count >= 2 else {
            return VariantComparison(difference: difference, lift: lift, confidenceLow: nil, confidenceHigh: nil,
                                     pValue: 1, sequentialPValue: 1, significant: false)
        }
        let nc = Double(control.count), nt = Double(treatment.count)
        let standardError = (control.variance / nc + treatment.variance / nt).squareRoot()
        let pValue: Double
        let margin: Double
        if binary {
            // Two proportions: the pooled z test; the interval from the unpooled (Wald) error.
            let pooled = (control.mean * nc + treatment.mean * nt) / (nc + nt)
            let pooledError = (pooled * (1 - pooled) * (1 / nc + 1 / nt)).squareRoot()
            pValue = pooledError > 0 ? 2 * Normal.upperTail(abs(difference) / pooledError) : (difference == 0 ? 1 : 0)
            margin = Normal.quantile(1 - alpha / 2) * standardError
        } else {
            // Welch's t with the Welch–Satterthwaite degrees of freedom.
            let a = control.variance / nc, b = treatment.variance / nt
            let freedom = (a + b) * (a + b) / (a * a / (nc - 1) + b * b / (nt - 1))
            if standardError > 0, freedom.isFinite {
                pValue = 2 * StudentT.upperTail(abs(difference) / standardError, freedom: freedom)
                margin = StudentT.quantile(1 - alpha / 2, freedom: freedom) * standardError
            } else {
                pValue = difference == 0 ? 1 : 0
                margin = 0
            }
        }
        let sequential = sequentialPValue(control: control, treatment: treatment, binary: binary)
        let enough = control.count >= minimumSample && treatment.count >= minimumSample
        return VariantComparison(difference: difference, lift: lift, confidenceLow: difference - margin, confidenceHigh: difference + margin,
                                 pValue: min(1, pValue), sequentialPValue: sequential, significant: enough && sequential <= alpha)
    }

    /// 1 ÷ Λ of the normal-mixture SPRT (Johari, Pekelis and Walsh, "Always valid inference"),
    /// capped at 1: Λ = √(V ⁄ (V+τ²)) · exp(τ²Δ² ⁄ (2V(V+τ²))) with Δ the difference of the means
    /// and V its variance. Binary variances are smoothed (one success and one failure added) so
    /// that a run of identical outcomes does not read as certainty.
    public static func sequentialPValue(control: OutcomeSummary, treatment: OutcomeSummary, binary: Bool) -> Double {
        let nc = Double(control.count), nt = Double(treatment.count)
        guard nc >= 2, nt >= 2 else { return 1 }
        let variance: Double
        let mixture: Double
        if binary {
            let pc = (control.mean * nc + 1) / (nc + 2), pt = (treatment.mean * nt + 1) / (nt + 2)
            variance = pc * (1 - pc) / nc + pt * (1 - pt) / nt
            mixture = binaryMixtureVariance
        } else {
            variance = control.variance / nc + treatment.variance / nt
            mixture = relativeMixtureVariance * (control.variance + treatment.variance) / 2
        }
        guard variance > 0, mixture > 0 else { return 1 }
        let difference = treatment.mean - control.mean
        let logLambda = 0.5 * log(variance / (variance + mixture)) + mixture * difference * difference / (2 * variance * (variance + mixture))
        return min(1, exp(-logLambda))
    }
}

/// The standard normal distribution.
enum Normal {
    static func upperTail(_ z: Double) -> Double { 0.5 * erfc(z / 2.0.squareRoot()) }

    /// The `p` quantile, by bisection on the tail (60 halvings: far below any precision used).
    static func quantile(_ p: Double) -> Double {
        var low = -40.0, high = 40.0
        for _ in 0..<60 {
            let middle = (low + high) / 2
            if 1 - upperTail(middle) < p { low = middle } else { high = middle }
        }
        return (low + high) / 2
    }
}

/// Student's t distribution, through the regularised incomplete beta function.
enum StudentT {
    static func upperTail(_ t: Double, freedom: Double) -> Double {
        let x = freedom / (freedom + t * t)
        let tail = 0.5 * IncompleteBeta.regularized(x, a: freedom / 2, b: 0.5)
        return t >= 0 ? tail : 1 - tail
    }

    static func quantile(_ p: Double, freedom: Double) -> Double {
        var low = -1e3, high = 1e3
        for _ in 0..<80 {
            let middle = (low + high) / 2
            if 1 - upperTail(middle, freedom: freedom) < p { low = middle } else { high = middle }
        }
        return (low + high) / 2
    }
}

enum IncompleteBeta {
    /// I_x(a, b), by the continued fraction (modified Lentz), using the symmetry
    /// I_x(a, b) = 1 − I_{1−x}(b, a) where the fraction converges slowly.
    static func regularized(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let logBeta: Double = lgamma(a + b) - lgamma(a) - lgamma(b)
        let logPowers: Double = a * log(x) + b * log(1 - x)
        let logFront = logBeta + logPowers
        if x < (a + 1) / (a + b + 2) {
            return exp(logFront) * fraction(x, a: a, b: b) / a
        }
        return 1 - exp(logFront) * fraction(1 - x, a: b, b: a) / b
    }

    private static func fraction(_ x: Double, a: Double, b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0
        var d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var result = d
        for m in 1...300 {
            let m = Double(m)
            let twoM: Double = 2 * m
            let evenTop: Double = m * (b - m) * x
            let even: Double = evenTop / ((a + twoM - 1) * (a + twoM))
            d = 1 + even * d
            if abs(d) < tiny { d = tiny }
            c = 1 + even / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            result *= d * c
            let oddTop: Double = -(a + m) * (a + b + m) * x
            let odd: Double = oddTop / ((a + twoM) * (a + twoM + 1))
            d = 1 + odd * d
            if abs(d) < tiny { d = tiny }
            c = 1 + odd / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let step = d * c
            result *= step
            if abs(step - 1) < 1e-12 { break }
        }
        return result
    }
}
