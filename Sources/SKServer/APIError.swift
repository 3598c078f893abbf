#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import SKCore
import SKEngine

/// An error as OpenAI's API returns it: an HTTP status and
/// `{"error": {"message", "type", "param", "code"}}`.
struct APIError: Error, Sendable {
    var status: HTTPResponse.Status
    var message: String
    var type: String
    var param: String?
    var retryAfter: Int?

    static func invalid(_ message: String, param: String? = nil) -> APIError {
        APIError(status: .badRequest, message: message, type: "invalid_request_error", param: param)
    }

    var response: Response {
        var error: [String: Any] = ["message": message, "type": type, "param": param ?? JSONNull(), "code": JSONNull()]
        if status == .contentTooLarge { error["code"] = "context_length_exceeded" }
        var headers: HTTPFields = [.contentType: "application/json"]
        if let r = retryAfter { headers[.retryAfter] = String(r) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: JSON.text(["error": error]))))
    }

    /// A library error in API terms: bad input is the request's fault (400), a prompt too long 413.
    static func from(_ e: Error) -> APIError {
        switch e {
        case let a as APIError: return a
        case Scheduler.SchedulerError.queueFull:
            return APIError(status: .serviceUnavailable, message: "all slots are busy and the queue is full; retry later", type: "server_busy", retryAfter: 1)
        case Scheduler.SchedulerError.shuttingDown:
            return APIError(status: .serviceUnavailable, message: "the server is shutting down", type: "server_error")
        case let s as SinkKitError where s.message.contains("context holds") || s.message.contains("context leaves room"):
            return APIError(status: .contentTooLarge, message: s.message, type: "invalid_request_error")
        case let s as SinkKitError where s.exitStatus == .usage || s.exitStatus == .input:
            return .invalid(s.message)
        case let h as any HTTPResponseError:
            let msg = h.status == .notFound ? "no such endpoint (this server has POST /v1/chat/completions, POST /v1/completions, GET /v1/models, GET /health)"
                : h.status == .contentTooLarge ? "the request body is too large" : "\(h.status.reasonPhrase)"
            return APIError(status: h.status, message: msg, type: h.status.code < 500 ? "invalid_request_error" : "server_error")
        default:
            return APIError(status: .internalServerError, message: "\(e)", type: "server_error")
        }
    }
}

/// Every error, the router's own 404 and 405 included, leaves as an OpenAI error object.
struct OpenAIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do { return try await next(request, context) } catch { return APIError.from(error).response }
    }
}

enum JSON {
    static func text(_ v: Any) -> String {
        (try? JSONWriter.string(v)) ?? "{}"
    }

    static func response(_ v: Any, status: HTTPResponse.Status = .ok) -> Response {
        Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text(v))))
    }
}
