// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// What writes a received array's bytes: a read from a socket into the array's storage.
protocol ByteSource {
    /// Writes up to `buffer.count` bytes; returns how many (0 or less: none).
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Int

    /// After a `fill` that filled its whole buffer: writes up to `buffer.count` more bytes
    /// that continue the same result, if any are ready; returns how many (0 or less: none).
    mutating func fillMore(_ buffer: UnsafeMutableRawBufferPointer) -> Int
}

/// Byte arrays filled in place, as a receive returns them.
enum ByteArray {
    /// The largest read made into the stack (the most `withUnsafeTemporaryAllocation` always
    /// takes from the stack).
    static let smallRead = 1024

    /// An array of up to `maxLength` bytes written by `source`, allocated for what the read
    /// is expected to bring.
    ///
    /// Expecting a small read (or with a `maxLength` of at most ``smallRead``), the read goes
    /// to the stack and the bytes are copied into an array of their size; a read that fills
    /// the stack buffer goes on (``ByteSource/fillMore(_:)``) in an array of `maxLength`, so
    /// a result holds everything that was ready, as a single read would. Otherwise the read
    /// goes straight into an array of `maxLength`. The caller expects a small read after a
    /// small one: small reads skip allocating `maxLength` bytes (64 KiB by default, made and
    /// freed outside malloc's per-thread cache: about 550 instructions) and return arrays
    /// that hold no more memory than their data; large ones skip the copy.
    static func read<Source: ByteSource>(upTo maxLength: Int, expectingSmall: Bool, from source: inout Source) -> [UInt8] {
        guard expectingSmall || maxLength <= smallRead else { return make(capacity: maxLength, from: &source) }
        return withUnsafeTemporaryAllocation(byteCount: smallRead, alignment: 1) { stack in
            let limit = Swift.min(maxLength, smallRead)
            let count = Swift.min(Swift.max(source.fill(UnsafeMutableRawBufferPointer(rebasing: stack[..<limit])), 0), limit)
            guard count > 0 else { return [] }
            let first = UnsafeRawBufferPointer(rebasing: stack[..<count])
            if count < smallRead || maxLength == count {
                // `Array`'s initializer from a raw buffer, specialised here, allocates the
                // array at its size and copies with one `memcpy`: fewer instructions than
                // `make` with a copying source or `append(contentsOf:)`.
                return Array(first)
            }
            return withUnsafeMutablePointer(to: &source) { source in
                var continuation = Continuation(first: first, source: source)
                return make(capacity: maxLength, from: &continuation)
            }
        }
    }

    /// Bytes already read, copied into the array, and then what more the source has ready.
    private struct Continuation<Source: ByteSource>: ByteSource {
        let first: UnsafeRawBufferPointer
        let source: UnsafeMutablePointer<Source>

        func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Int {
            let count = Swift.min(first.count, buffer.count)
            buffer.baseAddress!.copyMemory(from: first.baseAddress!, byteCount: count)
            guard count < buffer.count else { return count }
            let more = source.pointee.fillMore(UnsafeMutableRawBufferPointer(rebasing: buffer[count...]))
            return count + Swift.max(more, 0)
        }

        func fillMore(_ buffer: UnsafeMutableRawBufferPointer) -> Int { 0 }
    }

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
