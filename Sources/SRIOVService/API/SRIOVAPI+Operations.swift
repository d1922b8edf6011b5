import HTTPServer

extension SRIOVAPI {
    /// Routes for operating the daemon itself (metrics and the like).
    func addOperationsRoutes(to router: inout Router) {}
}
