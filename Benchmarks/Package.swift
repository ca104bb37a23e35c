// swift-tools-version: 6.0
// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import PackageDescription

// The benchmarks live in their own package so that the library's build and CI stay light.
// Build: swift build -c release --package-path Benchmarks
let package = Package(
    name: "MacTCPBenchmarks",
    dependencies: [
        .package(name: "MacTCP", path: "..")
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
            name: "dnrbench",
            dependencies: [.product(name: "MacTCP", package: "MacTCP")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
