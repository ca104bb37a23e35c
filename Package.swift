// swift-tools-version: 6.0
// MacTCP for Swift
// Licensed under the Apache License, Version 2.0; see LICENSE in the repository root.

import PackageDescription

let package = Package(
    name: "MacTCP",
    products: [
        .library(name: "MacTCP", targets: ["MacTCP"]),
        .executable(name: "mactcp", targets: ["mactcp"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // `swift package generate-documentation --target MacTCP`: the DocC catalog, checked
        // warning-free by .ci/run. A plugin only: nothing of it is linked into the package.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // The thin C layer: what Swift cannot import from Glibc (epoll, the full tcp_info,
        // SIOCOUTQNSD, errqueue structures, control messages).
        .target(name: "CMacTCP"),
        // The MacTCP stream objects, the reactor and the syscall layer.
        .target(name: "MacTCP", dependencies: ["CMacTCP"], swiftSettings: strictSettings),
        // The command-line tool.
        .executableTarget(
            name: "mactcp",
            dependencies: [
                "MacTCP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(name: "MacTCPTests", dependencies: ["MacTCP", "mactcp"], exclude: ["Peers"]),
    ],
    swiftLanguageModes: [.v6]
)

// As in swift-subprocess: imports are internal unless marked public (so that `CMacTCP` never
// leaks into the public interface), existentials are spelled `any`, and a file sees only the
// members of the modules it imports itself.
var strictSettings: [SwiftSetting] {
    [
        .enableUpcomingFeature("InternalImportsByDefault"),
        .enableUpcomingFeature("ExistentialAny"),
        .enableUpcomingFeature("MemberImportVisibility"),
    ]
}
