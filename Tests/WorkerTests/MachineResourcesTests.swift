import Foundation
import Testing

@testable import Worker

/// The defaults of `--cores` and `--memory`, against what the system itself says.
@Suite struct MachineResourcesTests {
    @Test func coresFollowTheAffinityMaskAsNprocSeesIt() throws {
        let nproc = Process()
        nproc.executableURL = URL(fileURLWithPath: "/usr/bin/nproc")
        let pipe = Pipe()
        nproc.standardOutput = pipe
        try nproc.run()
        nproc.waitUntilExit()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let expected = try #require(Int(text.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(MachineResources.affinityCount() == expected)
        let cores = MachineResources.cores()
        #expect(cores >= 1 && cores <= expected)
    }

    @Test func memoryIsTheTotalLessADocumentedReserve() {
        let total = MachineResources.totalMemory()
        #expect(total <= UInt64(ProcessInfo.processInfo.physicalMemory) && total > 0)
        #expect(MachineResources.reserve(of: 24 << 30) == UInt64(24 << 30) / 10)
        #expect(MachineResources.reserve(of: 2 << 30) == 512 << 20)
        #expect(MachineResources.reserve(of: 512 << 30) == 4 << 30)
        #expect(MachineResources.memory() == total - MachineResources.reserve(of: total))
    }
}
