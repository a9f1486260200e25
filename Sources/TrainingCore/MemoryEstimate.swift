import Foundation

extension CellParameters {
    /// The estimated peak resident memory, in bytes, of a process that runs this cell: never below
    /// it and at most ~1.35x it on the development machine (glibc malloc, OpenBLAS 0.3.21, one
    /// BLAS thread, a fresh process), measured over 116 cells from n = 256 to 20000, d = 8 to 784,
    /// width 8 to 4096, every trainer, synthetic and file data (`MemoryEstimateTests`), before the
    /// baseline made room for a reused runner's kept heap (8 MiB more: now up to ~1.55x for the
    /// smallest cells and file data).
    ///
    /// It is the largest of the cell's phases (training, measuring the fit, the Lipschitz search;
    /// for file data also parsing the file), each the sum of its large allocations, plus the
    /// process's baseline and a 5% + 2 MiB margin. For file data it needs the file's size and
    /// rows, read from the file (CSV: its lines; IDX files are not calibrated). glibc gives blocks
    /// of 32 MiB or more their own mapping and returns them when freed, while smaller freed blocks
    /// may stay resident: the "left on the heap" terms. A runner that ran bigger cells before may
    /// hold more than this (freed heap it kept): its worker replaces a runner that holds more
    /// than `reusableRunnerResident` before a cell. Each BLAS thread beyond the first adds 2 MiB (its
    /// stack and buffers: measured 0.3-0.7 MiB a thread at 2 to 8 threads). The iterative
    /// trainers' term counts two copies of a checkpoint's state (one being saved, one resumed
    /// from).
    public func estimatedPeakMemory(lipschitz options: LipschitzOptions = LipschitzOptions(), threads: Int = 1) -> Int {
        let cell = resolved()
        let mib = 1 << 20
        let mmapThreshold = 32 * mib
        let n = cell.n
        let d = cell.d
        let k = cell.width
        let p = k * (d + 2) + 1
        let isFile = cell.data == .file
        let (bytes, lines) = isFile ? Self.sizeAndLines(cell.dataFile) : (0, 0)
        let fileRows = max(n, lines)
        let testRows = isFile ? max(0, min(cell.nTest, fileRows - n)) : cell.nTest

        let data = (n + testRows) * (d + 1) * 8  // float64 training and test inputs and labels
        let trainFloat = n * (d + 1) * 4  // the float32 training copy
        let packedPanel = min(d, 256) * k * 8  // OpenBLAS's packed Wᵀ panel in X·Wᵀ
        let hiddenTrain = n * k * 8  // float64 pre-activations of the training set
        let hiddenTest = testRows * k * 8  // and of the test set
        let probeBatch = 2 * options.batchRows * k * 8  // the Lipschitz probe batch and its slopes
        // The ray search's directions at once (`rayLowerBound`): W u for each, and two d-wide copies.
        let rayRows = min(2 * 256, 2 * k) + 256
        let rays = rayRows * k * 8 + 3 * rayRows * d * 8
        // The interpolation floor's Gram block (`InterpolationFloor.blockRows`).
        let floorBlock = floorBlockBytes(n: n)

        var training: Int
        if cell.trainer == .randomFeatures {
            let lapackWork =
                (Double(k + 1) >= 1.6 * Double(n) ? n * n : 0) + 40 * (n + k + 1) + 130 * min(n, k + 1) + 1000
            training =
                data + trainFloat + 12 * p  // float32 network and its float64 copy
                + 2 * n * (k + 1) * 8  // the feature matrix and its column-major copy for dgelsd
                + n * d * 8 + 3 * n * 8  // float64 inputs of the forward pass; labels, b, s
                + 8 * lapackWork + packedPanel
        } else if cell.trainer == .construction {
            training = data + trainFloat + n * d * 8 + floorBlockBytes(n: n) + 4 * p  // directions, Gram block, network
        } else {
            let penalty = (cell.gradPenalty ?? 0) > 0
            training =
                data + trainFloat + n * k * 4  // the float32 n x k hidden matrix
                + 4 * p * (cell.trainer == .adam ? 5 : 3)  // initial, network, gradient (+ Adam's m, v)
                + (cell.extraSteps ?? 0 > 0 ? 4 * p : 0)  // the last network that fitted
                + packedPanel / 2
            if penalty {
                // psi'(Z), U W^T (smooth activations), the input gradients, S^T U and diag(a) W.
                training += n * k * 4 * (cell.activation == .relu ? 1 : 2) + n * d * 4 + 2 * k * d * 4 + n * 4
            }
            // A checkpoint's state: encoded while one is saved, and, in a resumed run, the
            // checkpoint it resumed from, still held while training has its own copies.
            let moments = cell.trainer == .adam ? 2 : 0
            let saved =
                cell.smoothAfterFit ?? 0 > 0
                ? 3 + moments  // the fit's network, the network, its moments, the best
                : 1 + moments + (cell.extraSteps ?? 0 > 0 ? 1 : 0)
            training += 2 * 4 * p * saved
            if cell.smoothAfterFit ?? 0 > 0 {
                // Smoothing under the fit: penalised workspaces for the training points and for
                // n + 64 off-data points (hidden, psi'(Z), U W^T, input gradients), the points,
                // a second optimiser and gradient, the best network, and the ascent's float32 copy.
                let off = n + SmoothingUnderFit.worstPoints
                training += (n + off) * (k * 4 * 3 + d * 4 + 4) + off * d * 4 + 4 * k * d * 4
                training += 4 * p * 6 + 16 * p
            }
        }
        // While measuring: two float32 networks, the float64 network and float64 training inputs.
        let measuring = data + trainFloat + 16 * p + n * d * 8
        let fitLeftover =
            cell.trainer == .randomFeatures && hiddenTrain < mmapThreshold && hiddenTest > hiddenTrain ? hiddenTrain : 0
        let fit = measuring + max(hiddenTrain, hiddenTest + fitLeftover) + k * d * 8 + packedPanel
        let lipschitzLeftover =
            cell.trainer != .randomFeatures && n * k * 4 < mmapThreshold && hiddenTest <= n * k * 4 ? hiddenTest : 0
        let lipschitz =
            measuring + options.freshPoints * d * 8  // fresh probe points
            + 513 * (8 * d + 64)  // the pool of best points
            + 3 * k * d * 8 + packedPanel  // the search's weights, copies, dgesdd's copy of W
            + hiddenTrain + max(probeBatch, rays, floorBlock) + lipschitzLeftover
        var peak = max(training, fit, lipschitz)
        if isFile {
            // Parsing holds the bytes twice (raw and text) and the growing values array.
            let parsing = 2 * bytes + 3 * fileRows * d * 8 + 64 * fileRows
            let parseLeftover = min(bytes + 3 * fileRows * d * 8, 64 * mib) + 64 * fileRows
            peak = max(parsing, peak + parseLeftover)
        }
        // The runtime, Foundation, OpenBLAS's buffers and the BLAS self-check's (which touches a
        // second thread's): the smallest cell peaks at 40.7 MiB in a debug build, 38.1 in release.
        return Self.runnerBaseline(threads: threads) + Int(1.05 * Double(peak))
    }

    /// The resident memory of a runner before its cell, as the estimates count it: the runtime,
    /// Foundation, OpenBLAS's buffers and the BLAS self-check's (a fresh runner holds 41.6 MiB
    /// in a debug build, less in release), room for a reused runner's kept heap (up to
    /// `reusableRunnerResident`), and 2 MiB per BLAS thread.
    public static func runnerBaseline(threads: Int) -> Int {
        let mib = 1 << 20
        return 48 * mib + 2 * mib * max(1, threads)
    }

    /// The most an idle runner may hold and still take a cell of `threads` threads: what it
    /// holds plus the cell's growth must stay within the cell's estimate. 3 MiB below the
    /// baseline: the smallest cells grow ~1.3 MiB beyond their estimate's own terms (measured:
    /// a fresh debug runner at 41.6 MiB peaks at 42.9 MiB on n 128, d 8, width 8). A runner that
    /// kept more from earlier cells is replaced by its worker.
    public static func reusableRunnerResident(threads: Int) -> Int {
        runnerBaseline(threads: threads) - (3 << 20)
    }

    /// The Gram block of the interpolation floor and of the construction's angles.
    private func floorBlockBytes(n: Int) -> Int { InterpolationFloor.blockRows(n: n) * n * 8 }

    /// A file's size and number of lines (0, 0 when it cannot be read).
    private static func sizeAndLines(_ path: String?) -> (Int, Int) {
        guard let path, let data = try? Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) else {
            return (0, 0)
        }
        var lines = 0
        data.withUnsafeBytes { bytes in
            for byte in bytes where byte == 0x0A { lines += 1 }
        }
        return (data.count, lines)
    }
}
