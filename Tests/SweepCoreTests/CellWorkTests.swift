import SweepCore
import Testing
import TrainingCore

/// Cell work's JSON: one flat encoding, read back to the same work whichever way it is read.
@Suite struct CellWorkTests {
    @Test(arguments: [
        CellWork.noop(index: 0, fail: false), .noop(index: 123_456_789, fail: true), .crash(index: 3), .hang(index: 4),
        .train(CellParameters(n: 64, d: 8, width: 16, seed: 2, eta: 0, activation: .tanh).resolved()),
    ])
    func workReadsBackFromItsJSON(_ work: CellWork) {
        #expect(CellWork(json: work.json) == work)
    }

    @Test func noOpJSONIsFlatAndAnythingElseIsReadByTheDecoder() {
        #expect(
            String(decoding: CellWork.noop(index: 17, fail: false).json, as: UTF8.self) == #"{"fail":false,"noop":17}"#
        )
        // Spelled differently (spaces, other key order): still the same work, through JSONDecoder.
        #expect(CellWork(json: Array(#"{ "noop": 17, "fail": false }"#.utf8)) == .noop(index: 17, fail: false))
        #expect(CellWork(json: Array(#"{"fail":false,"noop":17x}"#.utf8)) == nil)
        #expect(CellWork(json: Array(#"{"fail":maybe,"noop":1}"#.utf8)) == nil)
        #expect(CellWork(json: Array("not json".utf8)) == nil)
    }
}
