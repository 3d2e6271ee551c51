/// Topic names of DESIGN.md.
public enum KafkaTopic {
    public static let indexingRequests = "conduit.indexing.requests"
    public static let indexingChunks = "conduit.indexing.chunks"
    public static let indexingDLQ = "conduit.indexing.dlq"
    public static let usage = "conduit.usage"
    /// Usage events the cost-service cannot record (malformed, unknown schema), with the reason.
    public static let usageDLQ = "conduit.usage.dlq"
    public static let audit = "conduit.audit"
    public static let auditDLQ = "conduit.audit.dlq"
    public static let alerts = "conduit.alerts"
}
