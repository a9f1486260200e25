import CZeroMQ
import Diagnostics

extension IsosweepError {
    /// The error of the last libzmq call on this thread, while doing `operation`: code
    /// `transportTerminated` when the context was terminated (the caller should shut down).
    static func zeroMQ(_ operation: String, errno number: Int32 = zmq_errno()) -> IsosweepError {
        let text = String(cString: zmq_strerror(number))
        let code: Code =
            number == czmq_eterm() ? .transportTerminated : number == EADDRINUSE ? .addressInUse : .transport
        return IsosweepError(code, "\(operation): \(text) (errno \(number))")
    }
}
