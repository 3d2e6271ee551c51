import ConduitProtocol
import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// Answers a request the HTTP parser refuses (bad header bytes, a body length given twice
/// or both as Content-Length and chunked, an unknown method) with the error envelope, the
/// same as any other bad request, instead of Hummingbird's empty 400; then closes the
/// connection, since the parser cannot find the next request in such a stream. A parse error
/// in the middle of a request already being answered is left to Hummingbird.
final class MalformedRequestHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// Between a request's head arriving and its response's end leaving.
    private var answering = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { answering = true }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { answering = false }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError, !answering else {
            context.fireErrorCaught(error)
            return
        }
        let envelope = ErrorEnvelope(message: Self.message(for: parserError), type: .invalidRequest, param: nil, code: "malformed_request")
        let body = (try? JSONEncoder().encode(envelope)) ?? Data()
        let head = HTTPResponse(status: .badRequest, headerFields: [
            .contentType: "application/json", .contentLength: String(body.count), .connection: "close",
        ])
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in context.close(promise: nil) }
        answering = true  // nothing more is read from this connection
    }

    static func message(for error: HTTPParserError) -> String {
        switch error {
        case .invalidMethod: "The request's method is not an HTTP method."
        case .unexpectedContentLength, .invalidContentLength: "The request's body length is given more than once or in conflicting ways."
        case .invalidHeaderToken, .invalidCharactersUsed, .lfExpected: "The request's headers contain bytes HTTP does not allow."
        case .headerOverflow: "The request's headers are too large."
        default: "The request is not well-formed HTTP."
        }
    }
}
