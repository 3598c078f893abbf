import SKRuntime
import Foundation
let args = CommandLine.arguments
let m = try LlamaModel(path: args[1])
let s = try Session(model: m, context: 512, threads: 2)
let toks = args[2...].map { Int($0)! }
let l = try s.forward(toks, logitsFor: Array(0..<toks.count))
let v = m.config.vocabSize
for i in 0..<toks.count { let row = l[(i*v)..<((i+1)*v)]; print(row.firstIndex(of: row.max()!)! - i*v, row.max()!) }
