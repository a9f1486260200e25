import RealModule

// Thin aliases so that random-number code can use Double's functions without importing Foundation.
@inline(__always) func _log(_ x: Double) -> Double { Double.log(x) }
@inline(__always) func _cos(_ x: Double) -> Double { Double.cos(x) }
