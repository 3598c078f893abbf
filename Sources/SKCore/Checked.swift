/// Checked arithmetic for every size read from a file: overflow becomes an error, never a trap.
public enum Checked {
    public static func mul(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (r, o) = a.multipliedReportingOverflow(by: b)
        if o { throw SinkKitError(.overflow, "\(what()): \(a) × \(b) overflows") }
        return r
    }

    public static func add(_ a: Int, _ b: Int, _ what: @autoclosure () -> String) throws -> Int {
        let (r, o) = a.addingReportingOverflow(b)
        if o { throw SinkKitError(.overflow, "\(what()): \(a) + \(b) overflows") }
        return r
    }

    /// Product of a shape's dimensions, each required to be non-negative.
    public static func elementCount(_ shape: [Int], _ what: @autoclosure () -> String) throws -> Int {
        var n = 1
        for d in shape {
            if d < 0 { throw SinkKitError(.malformedHeader, "\(what()): negative dimension \(d) in shape \(shape)") }
            n = try mul(n, d, what())
        }
        return n
    }
}
