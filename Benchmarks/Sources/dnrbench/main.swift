// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

// dnrbench: the resolver's rate against a name server on loopback, the way
// Benchmarks/dnr/run.sh uses it beside glibc's getaddrinfo and c-ares.
//
//   dnrbench miss SERVER COUNT INFLIGHT   distinct names (nothing cached anywhere), COUNT of
//                                         them with INFLIGHT queries outstanding: queries/s
//   dnrbench hit SERVER COUNT             one cached name asked COUNT times: ns per call
//
// Every answer is checked (10.9.9.9, the benchmark zone's address); a wrong one fails the run.

import Dispatch
import Foundation
import MacTCP
import Synchronization

let arguments = CommandLine.arguments
guard arguments.count >= 4, let count = Int(arguments[3]) else {
    FileHandle.standardError.write(Data("usage: dnrbench miss SERVER COUNT INFLIGHT | hit SERVER COUNT\n".utf8))
    exit(64)
}
let server = arguments[2]
let configuration = DNRConfiguration(nameServers: [server], timeout: .seconds(2), attempts: 3)
let dnr = try DNR(configuration: configuration)
let expected: UInt32 = 0x0A09_0909
let run = UInt32.random(in: 0...UInt32.max)

func seconds(_ start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

switch arguments[1] {
case "miss":
    let inflight = arguments.count > 4 ? Int(arguments[4]) ?? 64 : 64
    let slots = DispatchSemaphore(value: inflight)
    let finished = DispatchSemaphore(value: 0)
    let wrong = Atomic(0)
    let left = Atomic(count)
    let start = ContinuousClock.now
    for index in 0..<count {
        slots.wait()
        let result = try dnr.strToAddr("n\(index)-\(run).bench.test")
        result.onDone { done in
            if done.addresses != [expected] { wrong.add(1, ordering: .relaxed) }
            slots.signal()
            if left.subtract(1, ordering: .relaxed).newValue == 0 { finished.signal() }
        }
    }
    finished.wait()
    let elapsed = seconds(start)
    print("miss queries \(count) inflight \(inflight) seconds \(String(format: "%.3f", elapsed)) qps \(Int(Double(count) / elapsed)) wrong \(wrong.load(ordering: .relaxed))")
    exit(wrong.load(ordering: .relaxed) == 0 ? 0 : 1)
case "hit":
    // The name made once, as a program holds the name it asks for (getaddrinfo's is a constant).
    let name = "hit-\(run).bench.test"
    let first = try dnr.strToAddr(name)
    try first.wait()
    guard first.addresses == [expected] else { exit(1) }
    var done = 0
    let start = ContinuousClock.now
    for _ in 0..<count {
        let result = try dnr.strToAddr(name)
        if result.isDone && result.addresses.first == expected { done += 1 }
    }
    let elapsed = seconds(start)
    print("hit calls \(count) seconds \(String(format: "%.3f", elapsed)) ns_per_call \(String(format: "%.1f", elapsed * 1e9 / Double(count))) answered_at_once \(done)")
    exit(done == count ? 0 : 1)
default:
    exit(64)
}
