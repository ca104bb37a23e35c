// swift-tools-version: 6.0
// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import PackageDescription

// The benchmarks live in their own package so that the library's build and CI stay light.
// Build: swift build -c release --package-path Benchmarks
let package = Package(
    name: "MacTCPBenchmarks",
    dependencies: [
        .package(name: "MacTCP", path: ".."),
        // The SwiftNIO reference of the HTTP load (niohttpd), beside httpd and the C one.
        .package(url: "https://github.com/apple/swift-nio", exact: "2.101.3"),
    ],
    targets: [
        .executableTarget(
            name: "netbench",
            dependencies: [.product(name: "MacTCP", package: "MacTCP")]
        ),
        .executableTarget(
            name: "httpd",
            dependencies: [.product(name: "MacTCP", package: "MacTCP")]
        ),
        .executableTarget(
            name: "niohttpd",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "dnrbench",
            dependencies: [.product(name: "MacTCP", package: "MacTCP")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
