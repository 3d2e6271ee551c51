import CRdKafka
import Foundation
import Logging

/// Owns one `rd_kafka_t`.
///
/// `@unchecked Sendable`: librdkafka documents its client handle as thread-safe ("all public APIs
/// are thread-safe" in INTRODUCTION.md), so any thread may call into it; it is destroyed once, in
/// `deinit`, when nothing else holds it.
final class KafkaHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    /// Reached from librdkafka's callbacks through the client opaque; kept alive as long as the handle.
    let context: KafkaCallbackContext

    init(type: rd_kafka_type_t, properties: [String: String], context: KafkaCallbackContext,
         configure: (OpaquePointer) -> Void = { _ in }) throws {
        guard let conf = rd_kafka_conf_new() else { throw KafkaError(.clientCreationFailed, reason: "out of memory") }
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in properties.sorted(by: { $0.key < $1.key }) {
            if rd_kafka_conf_set(conf, key, value, &errorText, errorText.count) != RD_KAFKA_CONF_OK {
                rd_kafka_conf_destroy(conf)
                throw KafkaError(.invalidConfiguration, reason: key)
            }
        }
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(context).toOpaque())
        // librdkafka logs to stderr unless told otherwise; our logs are JSON lines.
        rd_kafka_conf_set_log_cb(conf) { handle, level, facility, message in
            guard let handle, let opaque = rd_kafka_opaque(handle) else { return }
            let context = Unmanaged<KafkaCallbackContext>.fromOpaque(opaque).takeUnretainedValue()
            let text = message.map { String(cString: $0) } ?? ""
            let facilityText = facility.map { String(cString: $0) } ?? ""
            context.logger.log(level: level <= 3 ? .warning : .debug, "librdkafka: \(text)", metadata: ["kafka_facility": "\(facilityText)"])
        }
        configure(conf)
        guard let handle = rd_kafka_new(type, conf, &errorText, errorText.count) else {
            // On failure the configuration still belongs to us.
            rd_kafka_conf_destroy(conf)
            throw KafkaError(.clientCreationFailed, reason: String(decoding: errorText.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        self.pointer = handle
        self.context = context
    }

    deinit {
        // rd_kafka_destroy joins librdkafka's threads (and closes a consumer not yet closed), which
        // can take as long as a broker takes to answer; the last reference may be dropped on the
        // cooperative pool, so it runs on a thread of its own. The context lives until it returns,
        // because librdkafka may still log through it.
        let doomed = DoomedHandle(pointer: pointer, context: context)
        Thread.detachNewThread { doomed.destroy() }
    }

    /// Asks the broker for cluster metadata; blocks up to `timeoutMilliseconds`.
    func checkBroker(timeoutMilliseconds: Int32) throws {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let error = rd_kafka_metadata(pointer, 0, nil, &metadata, timeoutMilliseconds)
        if let metadata { rd_kafka_metadata_destroy(metadata) }
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(.brokerUnreachable, reason: String(cString: rd_kafka_err2name(error)))
        }
    }

    static func name(_ error: rd_kafka_resp_err_t) -> String {
        String(cString: rd_kafka_err2name(error))
    }
}

/// What librdkafka's C callbacks need from Swift.
final class KafkaCallbackContext: Sendable {
    let logger: Logger
    init(logger: Logger) { self.logger = logger }
}

/// The version of the librdkafka actually loaded (2.16 is needed for the Tansu broker).
public var librdkafkaVersion: String { String(cString: rd_kafka_version_str()) }

/// A handle whose owner is gone, on its way to `rd_kafka_destroy`.
///
/// `@unchecked Sendable` is safe: it holds only `let` properties, it is made in
/// `KafkaHandle.deinit` (when no other reference to the pointer is left) and moved to the one
/// thread that destroys it, so exactly one thread ever uses the pointer after that.
private struct DoomedHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    let context: KafkaCallbackContext

    func destroy() {
        rd_kafka_destroy(pointer)
        withExtendedLifetime(context) {}
    }
}
