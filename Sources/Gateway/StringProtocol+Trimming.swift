extension StringProtocol {
    /// The text without the leading and trailing characters that `trimmed` accepts: what
    /// Foundation's `trimmingCharacters(in:)` did, which FoundationEssentials does not have.
    func trimming(while trimmed: (Character) -> Bool) -> String {
        guard let first = firstIndex(where: { !trimmed($0) }), let last = lastIndex(where: { !trimmed($0) }) else {
            return ""
        }
        return String(self[first...last])
    }
}
