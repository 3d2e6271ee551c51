/// Topic names of DESIGN.md.
public enum KafkaTopic {
    public static let indexingRequests = "conduit.indexing.requests"
    public static let indexingChunks = "conduit.indexing.chunks"
    public static let indexingDLQ = "conduit.indexing.dlq"
    public static let usage = "conduit.usage"
    public static let audit = "conduit.audit"
    public static let alerts = "conduit.alerts"
}
