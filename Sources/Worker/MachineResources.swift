import Foundation
import Glibc

/// What this process may use of its machine (Linux): the defaults of a worker's `--cores` and
/// `--memory`.
public enum MachineResources {
    /// The CPUs this process may run on: its affinity mask (taskset, cpusets), and no more than
    /// its cgroup's CPU quota rounded up (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`).
    public static func cores() -> Int {
        var count = affinityCount() ?? ProcessInfo.processInfo.activeProcessorCount
        if let quota = cgroupCPUQuota() { count = min(count, max(1, Int(quota.rounded(.up)))) }
        return count
    }

    /// The CPUs in this process's affinity mask, from /proc/self/status ("Cpus_allowed_list:
    /// 0-3,8").
    static func affinityCount() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed_list:") })
        else { return nil }
        var count = 0
        for range in line.dropFirst("Cpus_allowed_list:".count).trimmingCharacters(in: .whitespaces).split(
            separator: ","
        ) {
            let ends = range.split(separator: "-").compactMap { Int($0) }
            if ends.count == 1 {
                count += 1
            } else if ends.count == 2, ends[1] >= ends[0] {
                count += ends[1] - ends[0] + 1
            }
        }
        return count > 0 ? count : nil
    }

    /// Bytes kept back from `--memory`'s default for the system, the worker and the runners'
    /// own code: 10% of the total, at least 512 MiB and at most 4 GiB.
    public static func reserve(of total: UInt64) -> UInt64 {
        min(4 << 30, max(512 << 20, total / 10))
    }

    /// The memory this process may use: its cgroup's limit (v2 `memory.max`, v1
    /// `memory.limit_in_bytes`) or the machine's physical memory, whichever is smaller.
    public static func totalMemory() -> UInt64 {
        let physical = UInt64(ProcessInfo.processInfo.physicalMemory)
        return min(physical, cgroupMemoryLimit() ?? .max)
    }

    /// `--memory`'s default: `totalMemory()` less `reserve(of:)`.
    public static func memory() -> UInt64 {
        let total = totalMemory()
        let reserve = reserve(of: total)
        return total > reserve + (64 << 20) ? total - reserve : max(total / 2, 1 << 20)
    }

    /// This process's cgroup path relative to the hierarchy of `controller` ("" for v2).
    static func cgroupPath(_ controller: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = fields[1].split(separator: ",").map(String.init)
            if controller.isEmpty ? fields[0] == "0" && fields[1].isEmpty : controllers.contains(controller) {
                return String(fields[2])
            }
        }
        return nil
    }

    /// The first readable file among the cgroup's own directory and the hierarchy's root (a
    /// container usually sees its own cgroup as the root).
    static func cgroupFile(_ root: String, _ path: String?, _ file: String) -> String? {
        var candidates = ["\(root)/\(file)"]
        if let path, path != "/" { candidates.insert("\(root)\(path)/\(file)", at: 0) }
        for candidate in candidates {
            if let text = try? String(contentsOfFile: candidate, encoding: .utf8) {
                return text.trimmingCharacters(in: .whitespacesAndNewlines)
            }
        }
        return nil
    }

    static func cgroupMemoryLimit() -> UInt64? {
        if let v2 = cgroupFile("/sys/fs/cgroup", cgroupPath(""), "memory.max"), v2 != "max", let bytes = UInt64(v2) {
            return bytes
        }
        if let v1 = cgroupFile("/sys/fs/cgroup/memory", cgroupPath("memory"), "memory.limit_in_bytes"),
            let bytes = UInt64(v1), bytes < (1 << 60)
        {
            return bytes
        }
        return nil
    }

    static func cgroupCPUQuota() -> Double? {
        if let v2 = cgroupFile("/sys/fs/cgroup", cgroupPath(""), "cpu.max") {
            let fields = v2.split(separator: " ")
            if fields.count == 2, let quota = Double(fields[0]), let period = Double(fields[1]), period > 0 {
                return quota / period
            }
        }
        if let quota = cgroupFile("/sys/fs/cgroup/cpu", cgroupPath("cpu"), "cpu.cfs_quota_us").flatMap(Double.init),
            quota > 0,
            let period = cgroupFile("/sys/fs/cgroup/cpu", cgroupPath("cpu"), "cpu.cfs_period_us").flatMap(Double.init),
            period > 0
        {
            return quota / period
        }
        return nil
    }
}
