public import Crypto
public import HTTP
public import Lifecycle
public import Logging

/// The REST API on its own HTTP server: what gatewayd starts and stops.
public final class APIServer: Sendable {
    public let service: APIService
    let server: HTTPServer

    public init(service: APIService, logger: Logger) throws(TLSError) {
        self.service = service
        let api = service.configuration
        var configuration = HTTPServer.Configuration()
        configuration.listen = api.listen
        configuration.maxConnections = api.maxConnections
        configuration.headerTimeoutMs = api.headerTimeoutMs
        configuration.idleTimeoutMs = api.idleTimeoutMs
        if let cert = api.tlsCertFile, let key = api.tlsKeyFile {
            configuration.tls = try TLSServerContext(certFile: cert, keyFile: key)
        }
        server = HTTPServer(configuration: configuration, handler: service, logger: logger)
        service.server.attach(server)
    }

    public func start() throws(HTTPServerError) { try server.start() }

    public func stop() { server.stop() }

    /// The bound port (useful with `http.listen` port 0).
    public var port: Int { server.port }

    public var stats: HTTPServer.Stats { server.stats }
}

extension APIServer: Service {
    public var serviceName: String { "http" }
}
