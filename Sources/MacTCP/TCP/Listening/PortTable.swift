// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// Objects by local port: 256 pages of 256 slots, a page made when its first port is used.
///
/// A lookup is two array reads; a `Dictionary` keyed by port hashes the key with a seeded
/// SipHash on every lookup, and a listener table is looked up several times per connection.
struct PortTable<Value: AnyObject> {
    private var pages = [[Value?]](repeating: [], count: 256)

    subscript(port: UInt16) -> Value? {
        get {
            let page = Int(port >> 8)
            return pages[page].isEmpty ? nil : pages[page][Int(port & 0xff)]
        }
        set {
            let page = Int(port >> 8)
            if pages[page].isEmpty {
                guard newValue != nil else { return }
                pages[page] = [Value?](repeating: nil, count: 256)
            }
            pages[page][Int(port & 0xff)] = newValue
        }
    }
}
