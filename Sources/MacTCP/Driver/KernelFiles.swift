// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

#if canImport(Glibc)
import Glibc
#else
#error("Unsupported platform")
#endif

/// Reads the kernel's text files under /proc and /sys.
enum KernelFiles {
    /// The whole file as text, or nil.
    static func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// The counters of a /proc/net/snmp or /proc/net/netstat file: for each group
    /// (`Tcp`, `TcpExt`, …) a header line of names followed by a line of values.
    static func counters(_ path: String) -> [String: [String: Int]] {
        guard let text = read(path) else { return [:] }
        var result: [String: [String: Int]] = [:]
        let lines = text.split(separator: "\n")
        var index = 0
        while index + 1 < lines.count {
            let names = lines[index].split(separator: " ")
            let values = lines[index + 1].split(separator: " ")
            if let group = names.first, group == values.first, names.count == values.count {
                var counters: [String: Int] = [:]
                for (name, value) in zip(names.dropFirst(), values.dropFirst()) {
                    counters[String(name)] = Int(value)
                }
                result[String(group.dropLast())] = counters
                index += 2
            } else {
                index += 1
            }
        }
        return result
    }

    /// The interface of the IPv4 default route (/proc/net/route), or nil.
    static func defaultRouteInterface() -> String? {
        guard let text = read("/proc/net/route") else { return nil }
        for line in text.split(separator: "\n").dropFirst() {
            let fields = line.split(whereSeparator: { $0 == "\t" || $0 == " " })
            // Iface Destination Gateway Flags RefCnt Use Metric Mask …
            if fields.count > 7, fields[1] == "00000000", fields[7] == "00000000" {
                return String(fields[0])
            }
        }
        return nil
    }

    /// An interface's IPv4 address and netmask, and whether it is up and a loopback.
    struct InterfaceAddress {
        let name: String
        let address: UInt32
        let netmask: UInt32
        let isUp: Bool
        let isLoopback: Bool
    }

    /// Every IPv4 address of every interface (getifaddrs).
    static func interfaceAddresses() -> [InterfaceAddress] {
        var list: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&list) == 0 else { return [] }
        defer { freeifaddrs(list) }
        var result: [InterfaceAddress] = []
        var cursor = list
        while let entry = cursor {
            defer { cursor = entry.pointee.ifa_next }
            guard let address = entry.pointee.ifa_addr, address.pointee.sa_family == sa_family_t(AF_INET) else { continue }
            let host = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
            let mask =
                entry.pointee.ifa_netmask.map { pointer in
                    pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt32(bigEndian: $0.pointee.sin_addr.s_addr) }
                } ?? 0
            let flags = entry.pointee.ifa_flags
            result.append(
                InterfaceAddress(
                    name: String(cString: entry.pointee.ifa_name),
                    address: host,
                    netmask: mask,
                    isUp: flags & UInt32(IFF_UP) != 0,
                    isLoopback: flags & UInt32(IFF_LOOPBACK) != 0
                ))
        }
        return result
    }

    /// An interface's MTU (/sys/class/net/NAME/mtu), or nil.
    static func mtu(of interface: String) -> Int? {
        read("/sys/class/net/\(interface)/mtu").flatMap { Int($0.trimmingCharacters(in: .newlines)) }
    }

    /// A whitespace-separated list of integers from a sysctl file.
    static func integers(_ path: String) -> [Int] {
        read(path)?.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).compactMap { Int($0) } ?? []
    }
}

extension String {
    fileprivate func trimmingCharacters(in set: Set<Character>) -> String {
        String(drop(while: set.contains).reversed().drop(while: set.contains).reversed())
    }
}

extension Set where Element == Character {
    fileprivate static let newlines: Set<Character> = ["\n", "\r", " "]
}
