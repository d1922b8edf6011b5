import HTTPServer
import SRIOVCore

extension ResponseStream: EventSink {}

/// `GET /events`: Server-Sent Events (WHATWG HTML), resumable with `Last-Event-ID` or `?after=`.
extension SRIOVAPI {
    func addEventRoutes(to router: inout Router) {
        router.add(.GET, "/events") { request, _, _ in
            do {
                return try subscribe(request)
            } catch let error as SRIOVError {
                return .response(error.response(instance: request.path))
            } catch {
                return .response(SRIOVError.storage(String(describing: error)).response(instance: request.path))
            }
        }
    }

    private func subscribe(_ request: HTTPRequest) throws -> HTTPHandlerResult {
        let filter = try eventFilter(request)
        let after = try resumePoint(request)
        let stream = ResponseStream()
        // The browser's EventSource waits this long before it reconnects.
        _ = stream.send(Array("retry: 2000\n\n".utf8))
        do {
            _ = try core.events.subscribe(filter, after: after, sink: stream)
        } catch .tooManySubscribers(let limit) {
            throw SRIOVError.tooManySubscribers(limit)
        } catch .unavailable(let why) {
            throw SRIOVError.storage(why)
        }
        let hub = core.events
        stream.onClose { hub.wake() }
        var headers = HTTPHeaders()
        headers.add("Content-Type", "text/event-stream")
        headers.add("Cache-Control", "no-store")
        return .stream(HTTPResponse(status: .ok, headers: headers, body: []), stream)
    }

    private func eventFilter(_ request: HTTPRequest) throws(SRIOVError) -> EventFilter {
        var filter = EventFilter(type: request.queryValue("type"), owner: request.queryValue("owner"))
        for name in ["pf", "vf"] {
            guard let text = request.queryValue(name) else { continue }
            guard let address = PCIAddress(text) else { throw .invalidParameter(name, "is not a PCI address") }
            if name == "pf" { filter.pf = address.description } else { filter.vf = address.description }
        }
        return filter
    }

    /// `Last-Event-ID` (what EventSource sends when it reconnects), else `?after=`; nil for "from now on". Both
    /// are checked when both are sent.
    private func resumePoint(_ request: HTTPRequest) throws(SRIOVError) -> Int64? {
        let header = try eventID(request.headers["Last-Event-ID"], name: "Last-Event-ID")
        let query = try eventID(request.queryValue("after"), name: "after")
        return header ?? query
    }

    private func eventID(_ text: String?, name: String) throws(SRIOVError) -> Int64? {
        guard let text else { return nil }
        guard let id = Int64(text), id >= 0 else { throw .invalidParameter(name, "must be an event id (0 or more)") }
        return id
    }
}
