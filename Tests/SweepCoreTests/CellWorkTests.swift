import SweepCore
import Testing
import TrainingCore

/// Cell work's JSON: one flat encoding, read back to the same work whichever way it is read.
@Suite struct CellWorkTests {
    @Test(arguments: [
        CellWork.noop(index: 0, fail: false), .noop(index: 123_456_789, fail: true),
        .diagnostic(DiagnosticCell(index: 3, behaviour: .crash)),
        .diagnostic(DiagnosticCell(index: 4, behaviour: .hang)),
        .diagnostic(DiagnosticCell(index: 5, behaviour: .hog)),
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

    /// Diagnostic cells keep the JSON and the keys they have always had, so databases of
    /// benchmark and test cells read the same.
    @Test func diagnosticCellsKeepTheirJSONAndKeys() {
        let cases: [(DiagnosticCell.Behaviour, json: String, canonical: String)] = [
            (.succeed, #"{"fail":false,"noop":7}"#, #"{"noop":7,"fail":false}"#),
            (.fail, #"{"fail":true,"noop":7}"#, #"{"noop":7,"fail":true}"#),
            (.crash, #"{"crash":7}"#, #"{"crash":7}"#),
            (.hang, #"{"hang":7}"#, #"{"hang":7}"#),
            (.hog, #"{"hog":7}"#, #"{"hog":7}"#),
        ]
        #expect(cases.count == DiagnosticCell.Behaviour.allCases.count)
        for (behaviour, json, canonical) in cases {
            let work = CellWork.diagnostic(DiagnosticCell(index: 7, behaviour: behaviour))
            #expect(String(decoding: work.json, as: UTF8.self) == json, "\(behaviour)")
            #expect(work.key == SHA256.hex(Array(canonical.utf8)), "\(behaviour)")
            #expect(CellWork(json: Array(json.utf8)) == work, "\(behaviour)")
        }
    }
}
