/// What writes a received array's bytes: a read from a socket into the array's storage.
protocol ByteSource {
    /// Writes up to `buffer.count` bytes; returns how many (0 or less: none).
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Int
}

/// Byte arrays filled in place, as a receive returns them.
enum ByteArray {
    /// An array of at most `capacity` bytes, written by `source` straight into the array's
    /// uninitialised storage. `source` keeps whatever else the read learned.
    ///
    /// `Array(unsafeUninitializedCapacity:initializingWith:)` does the same, but it allocates
    /// through a standard-library entry point that is neither inlined nor specialised and so
    /// looks up the storage class's generic metadata on every call (about 270 instructions, a
    /// fifth of a small receive's user-space cost). `reserveCapacity` is specialised in the
    /// caller, and `append(contentsOf:)` hands the free capacity to the sequence's
    /// `_copyContents(initializing:)`, the customisation point behind
    /// `UnsafeMutableBufferPointer.initialize(from:)`, which here is the read. (A source type
    /// rather than a closure: a closure with captures stored for the call gets a heap context.)
    ///
    /// Should a standard library fill arrays without `_copyContents`, or offer it less room
    /// than `capacity`, the read is not made there (a read into no room would look like the
    /// end of the stream) and is made through `Array(unsafeUninitializedCapacity:)` instead.
    static func make<Source: ByteSource>(capacity: Int, from source: inout Source) -> [UInt8] {
        var bytes = [UInt8]()
        bytes.reserveCapacity(capacity)
        var filled = false
        withUnsafeMutablePointer(to: &source) { source in
            withUnsafeMutablePointer(to: &filled) { filled in
                bytes.append(contentsOf: Filler(capacity: capacity, source: source, filled: filled))
            }
        }
        if filled { return bytes }
        return [UInt8](unsafeUninitializedCapacity: capacity) { buffer, initialized in
            initialized = Swift.min(Swift.max(source.fill(UnsafeMutableRawBufferPointer(buffer)), 0), capacity)
        }
    }
}

/// A sequence with no elements of its own whose copy into a buffer is its source's read.
private struct Filler<Source: ByteSource>: Sequence, IteratorProtocol {
    let capacity: Int
    let source: UnsafeMutablePointer<Source>
    /// Set once the read has been made here.
    let filled: UnsafeMutablePointer<Bool>

    var underestimatedCount: Int { 0 }

    mutating func next() -> UInt8? { nil }

    func _copyContents(initializing buffer: UnsafeMutableBufferPointer<UInt8>) -> (Filler, Int) {
        guard buffer.count >= capacity, !filled.pointee else { return (self, 0) }
        filled.pointee = true
        let room = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[..<capacity])
        return (self, Swift.min(Swift.max(source.pointee.fill(room), 0), capacity))
    }
}
