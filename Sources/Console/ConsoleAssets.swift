/// The web console (README, "The console"): a page, a stylesheet and a script written for it,
/// compiled into gatewayd, so a board serves it with no files installed and no internet.
///
/// The files hold no data and no secret: everything the page shows comes from the REST API
/// with the token the user typed, under the API's own roles and scopes.
public enum ConsoleAssets {
    public struct Asset: Sendable {
        public let contentType: String
        public let bytes: [UInt8]
    }

    /// By file name (`index.html`, `app.css`, `app.js`).
    public static let files: [String: Asset] = [
        "index.html": Asset(contentType: "text/html; charset=utf-8", bytes: PackageResources.index_html),
        "app.css": Asset(contentType: "text/css; charset=utf-8", bytes: PackageResources.app_css),
        "app.js": Asset(contentType: "text/javascript; charset=utf-8", bytes: PackageResources.app_js),
    ]

    /// Only this origin's own script and stylesheet, no inline code or style attribute in the
    /// markup, no frames, no form posting elsewhere: what an injected string could do is nothing.
    public static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
        + "form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
}
