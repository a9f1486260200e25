import Foundation

func _cos(_ x: Double) -> Double { Foundation.cos(x) }
func _sin(_ x: Double) -> Double { Foundation.sin(x) }

/// A fresh temporary directory for one test.
func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("isosweep-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
