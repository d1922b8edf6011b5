extension KeyedEncodingContainer {
    /// Encodes each value under its key, in order. An absent optional is written as JSON null rather than left out
    /// (a synthesized `encode(to:)` leaves it out), so clients see every field of the schema.
    package mutating func encodeAll(_ fields: KeyValuePairs<Key, any Encodable>) throws {
        for (key, value) in fields {
            try encode(value, forKey: key)
        }
    }
}
