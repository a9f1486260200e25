// swift-tools-version:6.2

import PackageDescription

let package = Package(
    name: "isosweep",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "isosweep", targets: ["isosweep"]),
        .library(name: "TrainingCore", targets: ["TrainingCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-numerics", from: "1.1.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CZeroMQ",
            pkgConfig: "libzmq",
            providers: [.apt(["libzmq3-dev"])]
        ),
        .target(name: "Diagnostics"),
        // The float32 training step's row passes, compiled per instruction set (AVX-512, AVX2,
        // baseline) and chosen at run time: Swift code builds for baseline x86-64 only.
        // libmvec (glibc's vector math) gives the float64 activations their vector loops.
        .target(name: "CKernels", linkerSettings: [.linkedLibrary("mvec")]),
        .target(name: "ZeroMQ", dependencies: ["CZeroMQ", "Diagnostics"]),
        // Linux calls Swift's Glibc module does not export (GNU extensions).
        .target(name: "CPosix"),
        // Pure values and decisions: sweep files, cell keys and work, the wire codec, the scheduler.
        .target(
            name: "SweepCore",
            dependencies: ["TrainingCore", "Diagnostics", .product(name: "Yams", package: "Yams")]
        ),
        // The SQLite store: schema, migrations, events, merge.
        .target(
            name: "SweepStore",
            dependencies: [
                "SweepCore", "TrainingCore", "Diagnostics", .product(name: "GRDB", package: "GRDB.swift"),
                // Binding the hot commit path's arguments directly (GRDB boxes each one).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ]
        ),
        // Statistics, aggregation, fits, tables, figures and the report.
        .target(name: "SweepAnalysis", dependencies: ["SweepCore", "SweepStore", "TrainingCore"]),
        // The scheduler's shell: the sweep, the store writer, the ROUTER socket, refinement.
        .target(
            name: "Coordinator",
            dependencies: [
                "SweepCore", "SweepStore", "ZeroMQ", "Diagnostics", "TrainingCore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // The HTTP pages: the coordinator's /status, /metrics and live page, and `serve`.
        .target(
            name: "SweepWeb",
            dependencies: [
                "Coordinator", "SweepAnalysis", "SweepCore", "SweepStore", "TrainingCore", "Diagnostics",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // A worker needs the protocol and the training core, never the store or the analysis.
        .target(
            name: "Worker",
            dependencies: [
                "SweepCore", "ZeroMQ", "TrainingCore", "Diagnostics", "CPosix",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .target(
            name: "TrainingCore",
            dependencies: [
                "COpenBLAS", "CKernels", "Diagnostics",
                .product(name: "RealModule", package: "swift-numerics"),
            ]
        ),
        // What the commands share: the coordinator's options and shell, logging, output, BLAS
        // set-up, local worker processes.
        .target(
            name: "CommandSupport",
            dependencies: [
                "Coordinator", "SweepWeb", "SweepCore", "Worker", "TrainingCore", "ZeroMQ", "Diagnostics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        // `isosweep bench`: every benchmark and the swarm load, apart from the product.
        .target(
            name: "SweepBench",
            dependencies: [
                "CommandSupport", "Coordinator", "SweepCore", "SweepStore", "SweepAnalysis", "Worker", "TrainingCore",
                "Diagnostics",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "isosweep",
            dependencies: [
                "TrainingCore", "SweepCore", "SweepStore", "SweepAnalysis", "Coordinator", "SweepWeb", "Worker",
                "ZeroMQ", "Diagnostics", "CommandSupport", "SweepBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .testTarget(
            name: "TrainingCoreTests",
            dependencies: ["TrainingCore", "CKernels", "Diagnostics"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "ZeroMQTests", dependencies: ["ZeroMQ", "Diagnostics"]),
        .testTarget(name: "SweepCoreTests", dependencies: ["SweepCore", "TrainingCore", "Diagnostics"]),
        .testTarget(
            name: "SweepStoreTests",
            dependencies: [
                "SweepStore", "SweepCore", "SweepAnalysis", "TrainingCore", "Diagnostics",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(
            name: "SweepAnalysisTests",
            dependencies: ["SweepAnalysis", "SweepStore", "SweepCore", "TrainingCore"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(
            name: "SweepWebTests",
            dependencies: [
                "SweepWeb", "SweepStore", "SweepCore", "SweepAnalysis", "TrainingCore",
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .testTarget(name: "WorkerTests", dependencies: ["Worker", "SweepCore", "TrainingCore", "Diagnostics"]),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["TrainingCore", "SweepCore", "SweepStore", "SweepAnalysis", "ZeroMQ"]
        ),
    ],
    swiftLanguageModes: [.v6]
)

// `make lint` and `make test` build with ISOSWEEP_WARNINGS_AS_ERRORS=1: a warning in the project's
// own targets fails them (dependencies' warnings do not count).
let warningsAsErrors = Context.environment["ISOSWEEP_WARNINGS_AS_ERRORS"] == "1"

// Upcoming features on every non-system target, as swift-log does.
for target in package.targets where [.executable, .test, .regular].contains(target.type) {
    var settings = target.swiftSettings ?? []
    if warningsAsErrors {
        settings.append(.treatAllWarnings(as: .error))
        target.cSettings = (target.cSettings ?? []) + [.treatAllWarnings(as: .error)]
    }
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
