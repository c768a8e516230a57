public import Crypto

/// What a token may do. Operators may do everything viewers may.
public enum Role: String, Sendable, CaseIterable, Comparable {
    case viewer
    case `operator`

    public static func < (lhs: Role, rhs: Role) -> Bool { lhs == .viewer && rhs == .operator }
}

/// What a token may see beyond its role. Individual vehicle positions are personal data: a
/// token shows them only when granted `positions`, whatever its role (SECURITY.md, "Data
/// protection").
public enum Scope: String, Sendable, CaseIterable {
    case positions
}

/// A configured token: only its SHA-256 is kept, so a leaked configuration file does not
/// leak working credentials.
public struct APIToken: Sendable, Equatable {
    public var name: String
    public var role: Role
    public var sha256: [UInt8]
    public var scopes: Set<Scope>

    public init(name: String, role: Role, sha256: [UInt8], scopes: Set<Scope> = []) {
        self.name = name
        self.role = role
        self.sha256 = sha256
        self.scopes = scopes
    }
}

/// Checks bearer tokens against the configured hashes.
public struct TokenAuthority: Sendable {
    public enum Outcome: Equatable {
        case authenticated(name: String, role: Role)
        case missing
        case invalid(String)
    }

    let tokens: [APIToken]

    public init(tokens: [APIToken]) {
        self.tokens = tokens
    }

    /// Every configured hash is compared (in constant time) whatever matches first, so the
    /// time taken says nothing about which token, or how much of one, was right.
    public func authenticate(authorization: String?) -> Outcome {
        guard let authorization, !authorization.isEmpty else { return .missing }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            return .invalid("the Authorization header must be \"Bearer <token>\"")
        }
        let presented = SHA256.hash(Array(parts[1].utf8))
        var match: APIToken?
        for token in tokens where constantTimeEquals(token.sha256, presented) && match == nil {
            match = token
        }
        guard let match else { return .invalid("the token is not known to this gateway") }
        return .authenticated(name: match.name, role: match.role)
    }

    /// The scopes of the token presented (none when it is missing or unknown).
    public func scopes(authorization: String?) -> Set<Scope> {
        guard let authorization else { return [] }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else { return [] }
        let presented = SHA256.hash(Array(parts[1].utf8))
        var scopes: Set<Scope> = []
        for token in tokens where constantTimeEquals(token.sha256, presented) { scopes = token.scopes }
        return scopes
    }

    /// A new random token (256 bits, hex) and its hash for the configuration.
    public static func newToken() throws(OpenSSLError) -> (token: String, sha256: String) {
        let token = "gwt_" + Hex.encode(try SecureRandom.bytes(32))
        return (token, SHA256.hex(Array(token.utf8)))
    }
}
