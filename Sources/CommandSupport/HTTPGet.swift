public import Foundation
import Synchronization

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// GETs `url`, waiting for the answer: the body, the HTTP status and any error's text.
public func httpGet(_ url: URL, timeout: TimeInterval) -> (Data?, Int?, String?) {
    let box = ResponseBox()
    let done = DispatchSemaphore(value: 0)
    var request = URLRequest(url: url)
    request.timeoutInterval = timeout
    URLSession.shared.dataTask(with: request) { data, response, error in
        box.set(data, (response as? HTTPURLResponse)?.statusCode, error.map { "\($0.localizedDescription)" })
        done.signal()
    }.resume()
    done.wait()
    return box.get()
}

/// Carries a URLSession answer back to the waiting thread.
final class ResponseBox: Sendable {
    private let value = Mutex<(Data?, Int?, String?)>((nil, nil, nil))
    func set(_ data: Data?, _ code: Int?, _ error: String?) { value.withLock { $0 = (data, code, error) } }
    func get() -> (Data?, Int?, String?) { value.withLock { $0 } }
}
