import SKCore

/// A restricted unpickler for the pickles `torch.save` writes for a dict of tensors
/// (`adapter_model.bin`, LongLoRA's `trainable_params.bin`).
///
/// It interprets the opcodes of pickle protocols 2 to 4 but resolves only the globals that
/// torch emits for tensors: `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter`,
/// the typed storage classes and `collections.OrderedDict`. Any other global (`os.system`,
/// `builtins.eval`, ...) is refused by name before anything could call it: nothing is ever
/// executed, the "calls" are evaluated by this file.
struct TorchUnpickler {
    static let storageTypes: [String: DType] = [
        "FloatStorage": .F32, "HalfStorage": .F16, "BFloat16Storage": .BF16, "DoubleStorage": .F64,
        "LongStorage": .I64, "IntStorage": .I32, "ShortStorage": .I16, "CharStorage": .I8,
        "ByteStorage": .U8, "BoolStorage": .BOOL,
    ]

    /// A list or dict under construction. Once it is put inside another container it is sealed:
    /// its nesting depth is then final (pickle fills a container before nesting it; a pickle that
    /// changes one afterwards, e.g. to build a chain or a cycle, is not a tensor dict).
    final class Box<T> {
        var value: T
        var depth = 1
        var sealed = false
        init(_ v: T) { value = v }
    }

    /// Containers nested deeper than this are refused: freeing a deep value tree recurses once
    /// per level (torch.save's tensor dicts nest about 4 deep).
    static let maxDepth = 64

    struct StorageRef { let key: String; let dtype: DType; let numel: Int }
    struct TensorRef { let storage: StorageRef; let offset: Int; let shape: [Int]; let strides: [Int]; let count: Int }

    indirect enum Value {
        case none, bool(Bool), int(Int), float(Double), string(String), bytes([UInt8])
        case tuple([Value], depth: Int)
        case list(Box<[Value]>)
        case dict(Box<[(Value, Value)]>)
        case global(String, String)
        case storage(StorageRef)
        case tensor(TensorRef)
        case mark
    }

    let source: String
    let bytes: UnsafeRawBufferPointer
    var pos = 0
    var stack: [Value] = []
    var memo: [Int: Value] = [:]

    init(source: String, bytes: UnsafeRawBufferPointer) {
        self.source = source
        self.bytes = bytes
    }

    func fail(_ what: String) -> SinkKitError {
        SinkKitError(.pickle, "\(source): \(what) (at pickle byte \(pos))")
    }

    mutating func read(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, pos + n <= bytes.count else { throw fail("pickle ends early") }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: bytes[pos..<(pos + n)])
    }
    mutating func u8() throws -> Int { Int(try read(1)[0]) }
    mutating func u16() throws -> Int { Int(UInt16(littleEndian: try read(2).loadUnaligned(as: UInt16.self))) }
    mutating func u32() throws -> Int { Int(UInt32(littleEndian: try read(4).loadUnaligned(as: UInt32.self))) }
    mutating func i32() throws -> Int { Int(Int32(littleEndian: try read(4).loadUnaligned(as: Int32.self))) }
    mutating func u64() throws -> Int {
        let v = UInt64(littleEndian: try read(8).loadUnaligned(as: UInt64.self))
        guard v <= UInt64(Int32.max) else { throw fail("length \(v) is too large") }
        return Int(v)
    }
    mutating func line() throws -> String {
        var s = [UInt8]()
        while true {
            let c = try u8()
            if c == 0x0A { break }
            s.append(UInt8(c))
            if s.count > 256 { throw fail("GLOBAL name too long") }
        }
        return String(decoding: s, as: UTF8.self)
    }
    mutating func pop() throws -> Value {
        guard let v = stack.popLast() else { throw fail("stack underflow") }
        return v
    }
    mutating func popMark() throws -> [Value] {
        var items: [Value] = []
        while true {
            let v = try pop()
            if case .mark = v { return items.reversed() }
            items.append(v)
        }
    }

    /// Nesting depth of a value (0 for scalars).
    func depth(_ v: Value) -> Int {
        switch v {
        case .tuple(_, let d): return d
        case .list(let b): return b.depth
        case .dict(let b): return b.depth
        default: return 0
        }
    }

    /// Seals `items` as children of a container and returns the container's depth.
    func nest(_ items: [Value]) throws -> Int {
        var d = 0
        for v in items {
            switch v {
            case .list(let b): b.sealed = true
            case .dict(let b): b.sealed = true
            default: break
            }
            d = max(d, depth(v))
        }
        guard d < Self.maxDepth else { throw fail("containers nested more than \(Self.maxDepth) deep") }
        return d + 1
    }

    func tuple(_ items: [Value]) throws -> Value { .tuple(items, depth: try nest(items)) }

    func checkGlobal(_ module: String, _ name: String) throws -> Value {
        switch (module, name) {
        case ("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_parameter"),
             ("collections", "OrderedDict"):
            return .global(module, name)
        case ("torch", _) where Self.storageTypes[name] != nil:
            return .global(module, name)
        default:
            throw fail("refusing pickle global \(module).\(name): only the globals torch.save emits for tensors are allowed")
        }
    }

    func toInt(_ v: Value, _ what: String) throws -> Int {
        if case .int(let i) = v { return i }
        throw fail("expected an integer for \(what)")
    }
    func toIntList(_ v: Value, _ what: String) throws -> [Int] {
        if case .tuple(let t, _) = v { return try t.map { try toInt($0, what) } }
        if case .list(let l) = v { return try l.value.map { try toInt($0, what) } }
        throw fail("expected a tuple of integers for \(what)")
    }

    mutating func call(_ f: Value, _ args: Value) throws -> Value {
        guard case .global(let m, let n) = f, case .tuple(let a, _) = args else { throw fail("REDUCE on something that is not an allowed global") }
        switch (m, n) {
        case ("collections", "OrderedDict"):
            return .dict(Box([]))
        case ("torch._utils", "_rebuild_tensor_v2"):
            guard a.count >= 4, case .storage(let s) = a[0] else { throw fail("bad _rebuild_tensor_v2 arguments") }
            let offset = try toInt(a[1], "storage offset")
            let shape = try toIntList(a[2], "size"), strides = try toIntList(a[3], "stride")
            guard shape.count == strides.count, offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
                throw fail("inconsistent tensor size \(shape) / stride \(strides)")
            }
            // The furthest element must lie inside the storage, and the view may not have more
            // elements than its storage (a stride-0 view of a few bytes would expand to gigabytes).
            let count = try Checked.elementCount(shape, "\(source): tensor size \(shape)")
            var last = offset
            for (d, st) in zip(shape, strides) where d > 0 { last = try Checked.add(last, try Checked.mul(d - 1, st, source), source) }
            if count == 0 { last = -1 }
            guard last < s.numel else { throw fail("tensor view reaches element \(last) of a \(s.numel)-element storage") }
            guard count <= s.numel else {
                throw fail("tensor view of \(count) elements over a \(s.numel)-element storage (overlapping or broadcast views are not weights)")
            }
            return .tensor(TensorRef(storage: s, offset: offset, shape: shape, strides: strides, count: count))
        case ("torch._utils", "_rebuild_parameter"):
            guard let t = a.first, case .tensor = t else { throw fail("bad _rebuild_parameter arguments") }
            return t
        default:
            throw fail("refusing to call \(m).\(n)")
        }
    }

    mutating func persistentLoad(_ pid: Value) throws -> Value {
        guard case .tuple(let t, _) = pid, t.count >= 5, case .string("storage") = t[0],
              case .global("torch", let typeName) = t[1], let dtype = Self.storageTypes[typeName],
              case .string(let key) = t[2] else {
            throw fail("unexpected persistent id (expected ('storage', torch.<Type>Storage, key, location, numel))")
        }
        let numel = try toInt(t[4], "storage size")
        guard numel >= 0 else { throw fail("negative storage size") }
        _ = try Checked.mul(numel, dtype.size, "\(source): storage \(key) size")
        return .storage(StorageRef(key: key, dtype: dtype, numel: numel))
    }

    mutating func run() throws -> Value {
        while true {
            let op = try u8()
            switch op {
            case 0x80: _ = try u8()                                  // PROTO
            case 0x95: _ = try read(8)                               // FRAME
            case 0x2E: return try pop()                              // STOP
            case 0x7D: stack.append(.dict(Box([])))                  // EMPTY_DICT
            case 0x5D: stack.append(.list(Box([])))                  // EMPTY_LIST
            case 0x29: stack.append(.tuple([], depth: 1))            // EMPTY_TUPLE
            case 0x28: stack.append(.mark)                           // MARK
            case 0x4E: stack.append(.none)                           // NONE
            case 0x88: stack.append(.bool(true))                     // NEWTRUE
            case 0x89: stack.append(.bool(false))                    // NEWFALSE
            case 0x4B: stack.append(.int(try u8()))                  // BININT1
            case 0x4D: stack.append(.int(try u16()))                 // BININT2
            case 0x4A: stack.append(.int(try i32()))                 // BININT
            case 0x8A:                                               // LONG1
                let n = try u8()
                guard n <= 8 else { throw fail("integer of \(n) bytes is too large") }
                let b = try read(n)
                var v: UInt64 = 0
                for i in 0..<n { v |= UInt64(b[i]) << UInt64(8 * i) }
                if n > 0 && n < 8 && b[n - 1] & 0x80 != 0 { v |= ~0 << UInt64(8 * n) }
                stack.append(.int(Int(Int64(bitPattern: v))))
            case 0x47:                                               // BINFLOAT
                stack.append(.float(Double(bitPattern: UInt64(bigEndian: try read(8).loadUnaligned(as: UInt64.self)))))
            case 0x58, 0x8C, 0x8D:                                   // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
                let n = op == 0x58 ? try u32() : op == 0x8C ? try u8() : try u64()
                stack.append(.string(String(decoding: try read(n), as: UTF8.self)))
            case 0x42, 0x43:                                         // BINBYTES, SHORT_BINBYTES
                let n = op == 0x42 ? try u32() : try u8()
                stack.append(.bytes(Array(try read(n))))
            case 0x63:                                               // GLOBAL
                let module = try line(), name = try line()
                stack.append(try checkGlobal(module, name))
            case 0x93:                                               // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw fail("STACK_GLOBAL needs two strings") }
                stack.append(try checkGlobal(module, name))
            case 0x71: memo[try u8()] = stack.last                   // BINPUT
            case 0x72: memo[try u32()] = stack.last                  // LONG_BINPUT
            case 0x94: memo[memo.count] = stack.last                 // MEMOIZE
            case 0x68, 0x6A:                                         // BINGET, LONG_BINGET
                let k = op == 0x68 ? try u8() : try u32()
                guard let v = memo[k] else { throw fail("memo key \(k) is undefined") }
                stack.append(v)
            case 0x74: stack.append(try tuple(try popMark()))        // TUPLE
            case 0x85: stack.append(try tuple([try pop()]))          // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); stack.append(try tuple([a, b]))
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); stack.append(try tuple([a, b, c]))
            case 0x51: stack.append(try persistentLoad(try pop()))   // BINPERSID
            case 0x52:                                               // REDUCE
                let args = try pop(), f = try pop()
                stack.append(try call(f, args))
            case 0x62:                                               // BUILD: only trivial states
                let state = try pop()
                switch state {
                case .none: break
                case .dict(let d) where d.value.isEmpty: break
                case .tuple(let t, _) where t.isEmpty: break
                default: throw fail("refusing BUILD with a non-empty state")
                }
            case 0x73, 0x75:                                         // SETITEM, SETITEMS
                let items: [Value]
                if op == 0x73 { let v = try pop(), k = try pop(); items = [k, v] } else { items = try popMark() }
                guard items.count % 2 == 0, case .dict(let d) = stack.last ?? .none else { throw fail("SETITEMS on something that is not a dict") }
                guard !d.sealed else { throw fail("SETITEMS on a dict that is already inside another container") }
                d.depth = max(d.depth, try nest(items))
                for i in stride(from: 0, to: items.count, by: 2) { d.value.append((items[i], items[i + 1])) }
            case 0x61, 0x65:                                         // APPEND, APPENDS
                let items = op == 0x61 ? [try pop()] : try popMark()
                guard case .list(let l) = stack.last ?? .none else { throw fail("APPENDS on something that is not a list") }
                guard !l.sealed else { throw fail("APPENDS on a list that is already inside another container") }
                l.depth = max(l.depth, try nest(items))
                l.value.append(contentsOf: items)
            default:
                throw fail("unsupported pickle opcode 0x\(String(op, radix: 16))")
            }
            if stack.count > 1_000_000 { throw fail("pickle stack too deep") }
        }
    }
}

/// A `torch.save` checkpoint holding a flat dict of tensors, read without running any code.
public final class TorchCheckpoint: TensorSource {
    public let path: String
    private let archive: ZipArchive
    private let prefix: String
    private var refs: [String: TorchUnpickler.TensorRef] = [:]
    public private(set) var tensorNames: [String] = []

    public var sourceDescription: String { path }

    public convenience init(path: String) throws {
        try self.init(file: try MappedFile(path: path))
    }

    public init(file: MappedFile) throws {
        let path = file.path
        self.path = path
        if file.size >= 2, try file.bytes(offset: 0, count: 2).elementsEqual([0x80, 0x02]) {
            throw SinkKitError(.pickle, "\(path): legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with a current torch")
        }
        archive = try ZipArchive(file: file)
        guard let pkl = archive.entries.keys.filter({ $0.hasSuffix("data.pkl") }).sorted().first else {
            throw SinkKitError(.pickle, "\(path): zip archive has no data.pkl (not a torch.save checkpoint)")
        }
        prefix = String(pkl.dropLast("data.pkl".count))
        if let bo = archive.entries[prefix + "byteorder"] {
            let s = String(decoding: try archive.data(bo), as: UTF8.self)
            guard s == "little" else { throw SinkKitError(.pickle, "\(path): byte order \(s) is not supported (expected little)") }
        }
        var u = TorchUnpickler(source: path, bytes: try archive.data(archive.entries[pkl]!))
        let top = try u.run()
        guard case .dict(let d) = top else { throw SinkKitError(.pickle, "\(path): top-level object is not a dict of tensors") }
        for (k, v) in d.value {
            guard case .string(let name) = k else { throw SinkKitError(.pickle, "\(path): a key of the top-level dict is not a string") }
            guard case .tensor(let t) = v else { throw SinkKitError(.pickle, "\(path): value of \(name) is not a tensor") }
            guard let entry = archive.entries[prefix + "data/" + t.storage.key] else {
                throw SinkKitError(.pickle, "\(path): storage \(t.storage.key) of tensor \(name) is missing from the archive")
            }
            guard entry.size >= t.storage.numel * t.storage.dtype.size else {   // product checked when the storage was read
                throw SinkKitError(.truncated, "\(path): storage \(t.storage.key) has \(entry.size) bytes, tensor \(name) needs \(t.storage.numel * t.storage.dtype.size)")
            }
            if refs[name] == nil { tensorNames.append(name) }
            refs[name] = t
        }
    }

    public func info(_ name: String) -> TensorInfo? {
        guard let t = refs[name] else { return nil }
        return TensorInfo(name: name, dtype: t.storage.dtype, shape: t.shape, elementCount: t.count, byteCount: t.count * t.storage.dtype.size)
    }

    public func loadF32(_ name: String) throws -> Tensor {
        guard let t = refs[name] else { throw SinkKitError(.shapeMismatch, "\(path): no tensor named \(name)") }
        let entry = archive.entries[prefix + "data/" + t.storage.key]!
        let size = t.storage.dtype.size
        let raw = try archive.data(entry)
        let n = t.count
        var out = [Float](repeating: 0, count: n)
        // Contiguous row-major strides read in one pass; other views gather element by element.
        var contiguous = true
        var expect = 1
        for (d, s) in zip(t.shape, t.strides).reversed() where d != 1 {
            if s != expect { contiguous = false }
            expect *= d
        }
        try out.withUnsafeMutableBufferPointer { dst in
            if contiguous {
                if n > 0 { try ElementConversion.decode(raw.baseAddress! + t.offset * size, dtype: t.storage.dtype, count: n, into: dst.baseAddress!) }
            } else {
                var index = [Int](repeating: 0, count: t.shape.count)
                for i in 0..<n {
                    var e = t.offset
                    for (k, s) in zip(index, t.strides) { e += k * s }
                    try ElementConversion.decode(raw.baseAddress! + e * size, dtype: t.storage.dtype, count: 1, into: dst.baseAddress! + i)
                    var d = t.shape.count - 1
                    while d >= 0 {
                        index[d] += 1
                        if index[d] < t.shape[d] { break }
                        index[d] = 0
                        d -= 1
                    }
                }
            }
        }
        archive.file.release(offset: entry.dataOffset, count: entry.size)
        return Tensor(shape: t.shape, data: out)
    }
}
