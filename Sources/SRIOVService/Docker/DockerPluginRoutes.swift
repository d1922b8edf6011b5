import HTTPServer
import SRIOVCore

/// The Docker plugin socket (`--docker-plugin PATH`): Docker's remote network driver protocol, on its own
/// router. Every call is a POST of JSON; unknown calls get 404 (libnetwork then knows the call is not
/// implemented); errors are `{"Err": "..."}` with the status the REST API would give (`ErrorMapping.swift`).
extension SRIOVAPI {
    /// The router of the plugin socket, behind `DockerPluginAdmission`.
    public func makeDockerPluginHandler(netdevs: DockerNetdevs = .kernel, unixRoles: UnixRoleMap) -> any HTTPHandler {
        var router = Router()
        let driver = DockerDriver(core: core, netdevs: netdevs)
        router.add(.POST, "/Plugin.Activate") { _, _, _ in .response(JSONBody.ok(["Implements": ["NetworkDriver"]])) }
        router.add(.POST, "/NetworkDriver.GetCapabilities") { _, _, _ in
            .response(JSONBody.ok(["Scope": "local", "ConnectivityScope": "local"]))
        }
        addDockerNetworkCalls(to: &router, driver: driver)
        addDockerEndpointCalls(to: &router, driver: driver)
        for call in ["DiscoverNew", "DiscoverDelete", "ProgramExternalConnectivity", "RevokeExternalConnectivity"] {
            router.add(.POST, "/NetworkDriver." + call) { request, context, _ in
                dockerCall(request, context) { _ in EmptyAnswer() }
            }
        }
        return DockerPluginAdmission(router: router, unixRoles: unixRoles)
    }

    private func addDockerNetworkCalls(to router: inout Router, driver: DockerDriver) {
        router.add(.POST, "/NetworkDriver.CreateNetwork") { request, context, _ in
            dockerCall(request, context) { caller in
                let body = try JSONBody.decode(DockerCreateNetworkRequest.self, from: request.body)
                try await driver.createNetwork(body, caller: caller)
                return EmptyAnswer()
            }
        }
        router.add(.POST, "/NetworkDriver.DeleteNetwork") { request, context, _ in
            dockerCall(request, context) { caller in
                let body = try JSONBody.decode(DockerNetworkRequest.self, from: request.body)
                try await driver.deleteNetwork(id: body.networkID, caller: caller)
                return EmptyAnswer()
            }
        }
    }

    private func addDockerEndpointCalls(to router: inout Router, driver: DockerDriver) {
        router.add(.POST, "/NetworkDriver.CreateEndpoint") { request, context, _ in
            dockerCall(request, context) { caller in
                let body = try JSONBody.decode(DockerCreateEndpointRequest.self, from: request.body)
                let mac = try await driver.createEndpoint(body, caller: caller)
                let given = body.interface?.macAddress.map { !$0.isEmpty } ?? false
                return DockerCreateEndpointResponse(interface: given ? nil : DockerInterface(macAddress: mac))
            }
        }
        router.add(.POST, "/NetworkDriver.DeleteEndpoint") { request, context, _ in
            dockerCall(request, context) { caller in
                let body = try JSONBody.decode(DockerEndpointRequest.self, from: request.body)
                try await driver.deleteEndpoint(network: body.networkID, endpoint: body.endpointID, caller: caller)
                return EmptyAnswer()
            }
        }
        router.add(.POST, "/NetworkDriver.EndpointOperInfo") { request, _, _ in
            // A read: answered inline with the endpoint's allocation and MAC.
            do {
                let body = try JSONBody.decode(DockerEndpointRequest.self, from: request.body)
                let endpoint = try read { try $0.dockerEndpoint(network: body.networkID, endpoint: body.endpointID) }
                var value: [String: String] = [:]
                if let endpoint { value = ["allocation": endpoint.allocationID, "mac": endpoint.mac] }
                return .response(JSONBody.ok(["Value": value]))
            } catch let error as SRIOVError {
                return .response(error.dockerPluginResponse())
            } catch {
                return .response(SRIOVError.storage(String(describing: error)).dockerPluginResponse())
            }
        }
        router.add(.POST, "/NetworkDriver.Join") { request, context, _ in
            dockerCall(request, context) { caller in
                let body = try JSONBody.decode(DockerJoinRequest.self, from: request.body)
                return try await driver.join(body, caller: caller)
            }
        }
        router.add(.POST, "/NetworkDriver.Leave") { request, context, _ in
            dockerCall(request, context) { caller in
                let body = try JSONBody.decode(DockerEndpointRequest.self, from: request.body)
                try await driver.leave(body, caller: caller)
                return EmptyAnswer()
            }
        }
    }

    /// A driver call, run off the event loop; its error is Docker's `{"Err": ...}`.
    private func dockerCall(
        _ request: HTTPRequest, _ context: RequestContext,
        _ body: @escaping @Sendable (Caller) async throws -> some Encodable & Sendable
    ) -> HTTPHandlerResult {
        let caller = Caller(actor: context.peer, requestID: context.requestID)
        let ready = readiness.isReady
        return .deferred {
            do {
                guard ready else { throw SRIOVError.notReady }
                return JSONBody.ok(try await body(caller))
            } catch let error as SRIOVError {
                return error.dockerPluginResponse()
            } catch {
                return SRIOVError.storage(String(describing: error)).dockerPluginResponse()
            }
        }
    }
}

/// `{}`: the answer of calls that succeed with nothing to say.
struct EmptyAnswer: Encodable, Sendable {}

/// Who may use the plugin socket, and in what media type. Docker (root) is admin by the Unix role map; a peer
/// needs the operator role, as for allocations on the main socket. Bodies are JSON: Docker sends
/// `application/vnd.docker.plugins.v1.x+json` (or v1.2), or no Content-Type at all.
struct DockerPluginAdmission: HTTPHandler {
    let router: Router
    let unixRoles: UnixRoleMap

    static let mediaTypes = [
        "application/json", "application/vnd.docker.plugins.v1+json", "application/vnd.docker.plugins.v1.1+json",
        "application/vnd.docker.plugins.v1.2+json", "application/vnd.docker.plugins.v1.x+json",
    ]

    func admit(_ head: HTTPRequest, context: RequestContext) -> HeadDecision {
        guard let credentials = context.peerCredentials else { return .proceed(context, isAuthenticated: false) }
        let actor = UnixRoleMap.actor(for: credentials)
        guard let role = unixRoles.role(for: credentials), role >= .operator else {
            let has = unixRoles.role(for: credentials).map { "the \($0) role" } ?? "no role"
            return .answer(Self.refuse(403, "\(actor) has \(has); the Docker plugin socket needs operator or admin"))
        }
        let types = head.headers.values(for: "Content-Type")
        if let type = types.first, types.count > 1 || !Self.mediaTypes.contains(RequestMediaType.mediaType(type) ?? "")
        {
            return .answer(
                Self.refuse(
                    415, "a driver call's body is JSON (\(Self.mediaTypes.joined(separator: ", "))); got \(type)"))
        }
        return .proceed(context.replacingPeer(actor), isAuthenticated: false)
    }

    func handle(_ request: HTTPRequest, context: RequestContext) -> HTTPHandlerResult {
        guard request.method == .POST else {
            return .response(Self.answer(405, "Docker plugin calls are POST; \(request.method.rawValue) is not"))
        }
        if router.pattern(for: request) == nil {
            return .response(
                Self.answer(404, "sriovd does not implement \(request.path.prefix(128)) (a network driver only)"))
        }
        return router.handle(request, context: context)
    }

    private static func refuse(_ status: Int, _ detail: String) -> HTTPHandlerResult {
        .response(answer(status, detail))
    }

    private static func answer(_ status: Int, _ detail: String) -> HTTPResponse {
        .json(HTTPStatus(code: status), JSONBody.encode(["Err": "sriovd: " + detail]))
    }
}
