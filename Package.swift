// swift-tools-version: 6.1
// SMTPGuard: stops SMTP AUTH password guessing. Module layout: README.md, "Layout".
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "smtpguard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "smtpguard", targets: ["smtpguard"]),
        .library(name: "GuardCore", targets: ["GuardCore"]),
        .library(name: "SMTPWire", targets: ["SMTPWire"]),
        .library(name: "SMTPProxy", targets: ["SMTPProxy"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: []),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // Pure domain: the engine, its rules, the configuration model. Foundation and swift-crypto
        // (the hashes: pure, no I/O) only.
        .target(name: "GuardCore", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: strict),
        // SMTP on the wire: framing, commands, replies, SASL, EHLO editing, the session machine.
        .target(
            name: "SMTPWire",
            dependencies: ["GuardCore", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict
        ),
        // The proxy: listeners, backend connections, handlers that carry out the machine's actions.
        .target(
            name: "SMTPProxy",
            dependencies: [
                "GuardCore", "SMTPWire",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Dovecot's auth policy (HTTP) and Postfix's policy delegation, decided by the engine.
        .target(
            name: "PolicyServers",
            dependencies: [
                "GuardCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The log watcher: log formats (pure), followers, firewall actions.
        .target(
            name: "LogWatch",
            dependencies: [
                "GuardCore",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Durable state: bans, attempts, alerts (SQLite embedded; PostgreSQL for clusters).
        .target(
            name: "GuardStore",
            dependencies: [
                "GuardCore",
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The operator's view: the admin API, /metrics, the dashboard, alerts and their delivery.
        .target(
            name: "AdminServer",
            dependencies: [
                "GuardCore", "GuardStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            // The dashboard page, compiled into the binary (PackageResources.dashboard_html).
            resources: [.embedInCode("Resources/dashboard.html")],
            swiftSettings: strict
        ),
        // Audits: the password rules and the password audit (crypt(3) through libcrypt).
        .systemLibrary(name: "CCrypt", path: "Sources/CCrypt"),
        .target(
            name: "Audit",
            dependencies: [
                "GuardCore", "SMTPWire", "CCrypt",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ],
            swiftSettings: strict),
        // The command line.
        .executableTarget(
            name: "smtpguard",
            dependencies: [
                "GuardCore", "SMTPWire", "SMTPProxy", "GuardStore", "LogWatch", "PolicyServers", "AdminServer", "Audit",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // Benchmarks and load generation (see BENCHMARKS.md).
        .executableTarget(
            name: "engine-bench",
            dependencies: ["GuardCore"],
            path: "Benchmarks/EngineBenchmark",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "store-bench",
            dependencies: ["GuardCore", "GuardStore"],
            path: "Benchmarks/StoreBenchmark",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "smtp-load",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/SMTPLoad",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "policy-load",
            dependencies: [
                "GuardCore", "PolicyServers",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Benchmarks/PolicyLoad",
            swiftSettings: strict
        ),
        // Fuzzing (scripts/fuzz.sh): the targets, and one libFuzzer executable per target.
        .target(
            name: "FuzzTargets",
            dependencies: ["GuardCore", "SMTPWire", "LogWatch", .product(name: "NIOCore", package: "swift-nio")],
            path: "Fuzz/Targets",
            swiftSettings: strict
        ),
        .executableTarget(name: "fuzz-session", dependencies: ["FuzzTargets"], path: "Fuzz/Session", swiftSettings: strict),
        .executableTarget(name: "fuzz-lines", dependencies: ["FuzzTargets"], path: "Fuzz/Lines", swiftSettings: strict),
        .executableTarget(name: "fuzz-sasl", dependencies: ["FuzzTargets"], path: "Fuzz/SASL", swiftSettings: strict),
        .executableTarget(name: "fuzz-replies", dependencies: ["FuzzTargets"], path: "Fuzz/Replies", swiftSettings: strict),
        .executableTarget(name: "fuzz-proxy-header", dependencies: ["FuzzTargets"], path: "Fuzz/ProxyHeader", swiftSettings: strict),
        .executableTarget(name: "fuzz-evtx", dependencies: ["FuzzTargets"], path: "Fuzz/Evtx", swiftSettings: strict),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzTargets"], swiftSettings: strict),
        .testTarget(name: "GuardCoreTests", dependencies: ["GuardCore"], swiftSettings: strict),
        .testTarget(name: "LogWatchTests", dependencies: ["LogWatch", "GuardCore"], swiftSettings: strict),
        .testTarget(
            name: "PolicyServersTests",
            dependencies: [
                "PolicyServers", "GuardCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "AdminServerTests",
            dependencies: [
                "AdminServer", "GuardCore", "GuardStore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "AuditTests", dependencies: ["Audit", "GuardCore", "SMTPWire"], swiftSettings: strict),
        .testTarget(
            name: "GuardStoreTests",
            dependencies: ["GuardStore", "GuardCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SMTPWireTests",
            dependencies: ["SMTPWire", "GuardCore", .product(name: "NIOCore", package: "swift-nio")],
            exclude: ["Transcripts"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SMTPProxyTests",
            dependencies: [
                "SMTPProxy", "SMTPWire", "GuardCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            exclude: ["Fixtures"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "smtpguardTests",
            dependencies: ["smtpguard", "GuardCore"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
