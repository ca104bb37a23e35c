// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

/// Kernel TCP states (`tcpi_state`).
enum KernelTCPState: UInt8 {
    case established = 1
    case synSent, synReceived, finWait1, finWait2, timeWait, close, closeWait, lastAck, listen,
        closing, newSynReceived, boundInactive
}
