// SMTPGuard's own event log (JSON lines, `events.path`): the proxy's and policy services' AUTH
// attempts, read back by `replay`. Unlike the mail servers' logs it says which attempts used a
// default credential (the proxy saw the password and kept only that fact).
//   {"time":"…","event":"auth","source":"proxy",…,"client_ip":"192.0.2.1",…,"username":"admin","outcome":"failure",…,"default_credential":true}

import Foundation
import GuardCore

public struct EventsFormat: LogFormat {
    public let name = "events"
    public let rules = ["auth_failure", "auth_success", "default_credential"]
    public init() {}

    static let start = Array("{\"time\":\"".utf8)
    static let auth = Array("\"event\":\"auth\"".utf8)

    public func match(line: ArraySlice<UInt8>, message: ArraySlice<UInt8>, program: ArraySlice<UInt8>) -> LogMatch? {
        guard line.hasPrefix(Self.start, at: line.startIndex), line.find(Self.auth) != nil else { return nil }
        guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
            let client = (object["client_ip"] as? String).flatMap({ IPAddress($0) }),
            let outcomeText = object["outcome"] as? String, let outcome = AuthOutcome(rawValue: outcomeText)
        else { return .suspect }
        // The watcher's own attempts came from logs (mail logs, Windows events) that replay reads directly.
        if let source = object["source"] as? String, source == AttemptSource.logWatch.rawValue || source == AttemptSource.windows.rawValue { return nil }
        guard outcome == .failure || outcome == .success else { return nil }
        let username = object["username"] as? String ?? ""
        let rule = (object["default_credential"] as? Bool) == true ? "default_credential" : outcome == .success ? "auth_success" : "auth_failure"
        return .attempt(rule: rule, client: client, username: username, outcome: outcome, count: 1)
    }
}
