internal import COpenBLAS
import Foundation

/// sentence-transformers/all-MiniLM-L6-v2: a 6-layer BERT encoder (hidden 384, 12 heads of 32,
/// FFN 1536, exact erf GELU, LayerNorm eps 1e-12), masked mean pooling over every token (CLS
/// and SEP included) and L2 normalisation.
///
/// A batch is packed by tokens: all sequences' rows are stacked into one matrix, so the linear
/// layers are one SGEMM each over real tokens only (no padding rows), and attention runs per
/// sequence on strided views of that matrix.
///
/// `@unchecked Sendable`: every stored property is immutable after `init`, and the buffer
/// pointers point into `tensors`' read-only memory mapping, which this object keeps alive;
/// `embed` allocates its working memory per call, so concurrent calls share nothing mutable.
public final class MiniLMModel: @unchecked Sendable {
    public static let hidden = 384
    public static let heads = 12
    public static let headSize = 32
    public static let intermediate = 1536
    public static let layers = 6
    public static let maxPositions = 512
    static let epsilon: Float = 1e-12

    struct Layer {
        let query, key, value, attentionOutput: Linear
        let attentionNorm: Norm
        let intermediate, output: Linear
        let outputNorm: Norm
    }

    /// `y = x Wᵀ + b` with W stored [out, in].
    struct Linear {
        let weight: UnsafeBufferPointer<Float>
        let bias: UnsafeBufferPointer<Float>
        let inputs: Int
        let outputs: Int
    }

    struct Norm {
        let weight: UnsafeBufferPointer<Float>
        let bias: UnsafeBufferPointer<Float>
    }

    private let tensors: SafeTensors
    private let wordEmbeddings: UnsafeBufferPointer<Float>
    private let positionEmbeddings: UnsafeBufferPointer<Float>
    private let tokenTypeEmbeddings: UnsafeBufferPointer<Float>
    private let embeddingNorm: Norm
    private let encoder: [Layer]
    public let vocabularySize: Int

    /// Loads the weights from `model.safetensors` (memory-mapped, not copied).
    public init(weights url: URL) throws {
        let tensors = try SafeTensors(contentsOf: url)
        let hidden = Self.hidden
        func norm(_ prefix: String) throws -> Norm {
            Norm(weight: try tensors.tensor("\(prefix).weight", shape: [hidden]).values,
                 bias: try tensors.tensor("\(prefix).bias", shape: [hidden]).values)
        }
        func linear(_ prefix: String, _ inputs: Int, _ outputs: Int) throws -> Linear {
            Linear(weight: try tensors.tensor("\(prefix).weight", shape: [outputs, inputs]).values,
                   bias: try tensors.tensor("\(prefix).bias", shape: [outputs]).values,
                   inputs: inputs, outputs: outputs)
        }
        let words = try tensors.tensor("embeddings.word_embeddings.weight", shape: [30522, hidden])
        self.tensors = tensors
        wordEmbeddings = words.values
        vocabularySize = words.shape[0]
        positionEmbeddings = try tensors.tensor("embeddings.position_embeddings.weight", shape: [Self.maxPositions, hidden]).values
        tokenTypeEmbeddings = try tensors.tensor("embeddings.token_type_embeddings.weight", shape: [2, hidden]).values
        embeddingNorm = try norm("embeddings.LayerNorm")
        encoder = try (0..<Self.layers).map { index in
            let prefix = "encoder.layer.\(index)"
            return Layer(
                query: try linear("\(prefix).attention.self.query", hidden, hidden),
                key: try linear("\(prefix).attention.self.key", hidden, hidden),
                value: try linear("\(prefix).attention.self.value", hidden, hidden),
                attentionOutput: try linear("\(prefix).attention.output.dense", hidden, hidden),
                attentionNorm: try norm("\(prefix).attention.output.LayerNorm"),
                intermediate: try linear("\(prefix).intermediate.dense", hidden, Self.intermediate),
                output: try linear("\(prefix).output.dense", Self.intermediate, hidden),
                outputNorm: try norm("\(prefix).output.LayerNorm")
            )
        }
    }

    /// Sets how many threads OpenBLAS uses for the matrix products (process-wide).
    public static func setThreadCount(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// One L2-normalised 384-float embedding per token sequence (each `[CLS] … [SEP]`, at most 512 ids).
    /// Blocks the calling thread for the whole computation: call it off the event loops.
    public func embed(_ sequences: [[Int]]) -> [[Float]] {
        let hidden = Self.hidden
        let lengths = sequences.map { min($0.count, Self.maxPositions) }
        let total = lengths.reduce(0, +)
        if total == 0 { return sequences.map { _ in [Float](repeating: 0, count: hidden) } }
        var offsets: [Int] = []
        var running = 0
        for length in lengths {
            offsets.append(running)
            running += length
        }

        var x = [Float](repeating: 0, count: total * hidden)
        x.withUnsafeMutableBufferPointer { x in
            for (sequence, ids) in sequences.enumerated() {
                for position in 0..<lengths[sequence] {
                    let id = ids[position] >= 0 && ids[position] < vocabularySize ? ids[position] : WordPieceTokenizer.unknownID
                    let row = x.baseAddress! + (offsets[sequence] + position) * hidden
                    let word = wordEmbeddings.baseAddress! + id * hidden
                    let place = positionEmbeddings.baseAddress! + position * hidden
                    let type = tokenTypeEmbeddings.baseAddress!
                    for index in 0..<hidden { row[index] = word[index] + place[index] + type[index] }
                }
            }
            Self.layerNorm(x, rows: total, norm: embeddingNorm)
        }

        var q = [Float](repeating: 0, count: total * hidden)
        var k = q, v = q, context = q, attended = q
        var ffn = [Float](repeating: 0, count: total * Self.intermediate)
        let longest = lengths.max() ?? 0
        var scores = [Float](repeating: 0, count: longest * longest)
        let scale = 1 / Float(Self.headSize).squareRoot()

        for layer in encoder {
            Self.apply(layer.query, to: x, rows: total, into: &q)
            Self.apply(layer.key, to: x, rows: total, into: &k)
            Self.apply(layer.value, to: x, rows: total, into: &v)
            q.withUnsafeBufferPointer { q in
                k.withUnsafeBufferPointer { k in
                    v.withUnsafeBufferPointer { v in
                        context.withUnsafeMutableBufferPointer { context in
                            scores.withUnsafeMutableBufferPointer { scores in
                                for (sequence, length) in lengths.enumerated() where length > 0 {
                                    let rowOffset = offsets[sequence] * hidden
                                    for head in 0..<Self.heads {
                                        let column = head * Self.headSize
                                        // scores = Q_h K_hᵀ · scale, over this sequence only.
                                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(length), Int32(length), Int32(Self.headSize),
                                                    scale, q.baseAddress! + rowOffset + column, Int32(hidden),
                                                    k.baseAddress! + rowOffset + column, Int32(hidden),
                                                    0, scores.baseAddress!, Int32(length))
                                        Self.softmaxRows(scores.baseAddress!, rows: length, columns: length)
                                        // context_h = P V_h, written into this head's columns.
                                        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(length), Int32(Self.headSize), Int32(length),
                                                    1, scores.baseAddress!, Int32(length),
                                                    v.baseAddress! + rowOffset + column, Int32(hidden),
                                                    0, context.baseAddress! + rowOffset + column, Int32(hidden))
                                    }
                                }
                            }
                        }
                    }
                }
            }
            Self.apply(layer.attentionOutput, to: context, rows: total, into: &attended)
            Self.addAndNormalize(residual: &x, update: attended, rows: total, norm: layer.attentionNorm)
            Self.apply(layer.intermediate, to: x, rows: total, into: &ffn)
            Self.gelu(&ffn)
            Self.apply(layer.output, to: ffn, rows: total, into: &attended)
            Self.addAndNormalize(residual: &x, update: attended, rows: total, norm: layer.outputNorm)
        }

        return (0..<sequences.count).map { sequence in
            var pooled = [Float](repeating: 0, count: hidden)
            let length = lengths[sequence]
            guard length > 0 else { return pooled }
            x.withUnsafeBufferPointer { x in
                for position in 0..<length {
                    let row = x.baseAddress! + (offsets[sequence] + position) * hidden
                    for index in 0..<hidden { pooled[index] += row[index] }
                }
            }
            var norm: Float = 0
            for index in 0..<hidden {
                pooled[index] /= Float(length)
                norm += pooled[index] * pooled[index]
            }
            let inverse = 1 / max(norm.squareRoot(), 1e-12)
            for index in 0..<hidden { pooled[index] *= inverse }
            return pooled
        }
    }

    private static func apply(_ linear: Linear, to input: [Float], rows: Int, into output: inout [Float]) {
        output.withUnsafeMutableBufferPointer { output in
            // Start from the bias in every row, then accumulate x Wᵀ on top (beta = 1).
            for row in 0..<rows {
                (output.baseAddress! + row * linear.outputs).update(from: linear.bias.baseAddress!, count: linear.outputs)
            }
            input.withUnsafeBufferPointer { input in
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(linear.outputs), Int32(linear.inputs),
                            1, input.baseAddress!, Int32(linear.inputs),
                            linear.weight.baseAddress!, Int32(linear.inputs),
                            1, output.baseAddress!, Int32(linear.outputs))
            }
        }
    }

    private static func layerNorm(_ x: UnsafeMutableBufferPointer<Float>, rows: Int, norm: Norm) {
        let hidden = Self.hidden
        for row in 0..<rows {
            let values = x.baseAddress! + row * hidden
            var mean: Float = 0
            for index in 0..<hidden { mean += values[index] }
            mean /= Float(hidden)
            var variance: Float = 0
            for index in 0..<hidden {
                let centered = values[index] - mean
                variance += centered * centered
            }
            variance /= Float(hidden)
            let inverse = 1 / (variance + epsilon).squareRoot()
            for index in 0..<hidden {
                values[index] = (values[index] - mean) * inverse * norm.weight[index] + norm.bias[index]
            }
        }
    }

    private static func addAndNormalize(residual: inout [Float], update: [Float], rows: Int, norm: Norm) {
        residual.withUnsafeMutableBufferPointer { residual in
            update.withUnsafeBufferPointer { update in
                for index in 0..<(rows * hidden) { residual[index] += update[index] }
            }
            layerNorm(residual, rows: rows, norm: norm)
        }
    }

    private static func softmaxRows(_ values: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        for row in 0..<rows {
            let line = values + row * columns
            var largest = -Float.infinity
            for column in 0..<columns { largest = max(largest, line[column]) }
            var sum: Float = 0
            for column in 0..<columns {
                line[column] = expf(line[column] - largest)
                sum += line[column]
            }
            let inverse = 1 / sum
            for column in 0..<columns { line[column] *= inverse }
        }
    }

    /// Exact GELU: x · Φ(x) = 0.5 · x · (1 + erf(x / √2)).
    private static func gelu(_ values: inout [Float]) {
        let inverseRootTwo: Float = 0.70710678118654752
        values.withUnsafeMutableBufferPointer { values in
            for index in values.indices {
                let x = values[index]
                values[index] = 0.5 * x * (1 + fastErf(x * inverseRootTwo))
            }
        }
    }
}
