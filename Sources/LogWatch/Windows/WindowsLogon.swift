// What a Windows Security event says about a logon: who, from where, how, and with what
// result. The events that matter for password guessing:
//   4625 an account failed to log on (Status / SubStatus say why), 4624 logged on,
//   4771 Kerberos pre-authentication failed (domain controllers; 0x18 wrong password),
//   4776 the DC validated NTLM credentials (Status 0 or why not; no address, only a workstation),
//   4740 an account was locked out,
//   and Windows 2003's 528 (logged on), 529–537 and 539 (failed; 539 locked out), 680 (NTLM).
// Logon types 3 (network) and 8 (network cleartext: IIS SMTP AUTH, basic auth) are what mail
// makes; 2 (interactive) and 10 (remote desktop) are counted too and named.

import GuardCore

public struct WindowsLogon: Sendable, Equatable {
    public enum Result: String, Sendable, Equatable {
        case success
        case failure
        /// An account was locked out (4740): not an attempt, a consequence.
        case lockout
    }

    public var eventID: Int
    public var result: Result
    public var time: Timestamp?
    public var username: String
    public var domain: String
    /// The client's address; nil when the event has none ("-", 4776, local logons).
    public var client: IPAddress?
    public var port: Int?
    public var logonType: Int?
    /// NTSTATUS (4625, 4776, 680) or Kerberos result code (4771), when given.
    public var status: UInt32?
    public var subStatus: UInt32?
    /// The computer that logged the event, and the workstation the client named.
    public var computer: String
    public var workstation: String

    /// The rule name reports count it under ("4625_failure", "4771_kerberos_failure" …).
    public var rule: String {
        switch self.eventID {
        case 4771: return "4771_kerberos_failure"
        case 4776, 680: return "\(self.eventID)_ntlm_\(self.result.rawValue)"
        case 4740: return "4740_lockout"
        default: return "\(self.eventID)_\(self.result.rawValue)"
        }
    }

    /// The most specific status: SubStatus when it says more than Status.
    public var reasonCode: UInt32? {
        if let sub = self.subStatus, sub != 0 { return sub }
        return self.status
    }

    /// Why a logon failed, in words ("wrong password", "no such user" …), or "".
    public var reason: String {
        guard let code = self.reasonCode else { return self.result == .lockout ? "account locked out" : "" }
        if self.eventID == 4771 { return WindowsCodes.kerberos[code] ?? WindowsCodes.hex(code) }
        return WindowsCodes.ntStatus[code] ?? WindowsCodes.hex(code)
    }

    public var logonTypeName: String? { self.logonType.map { WindowsCodes.logonTypes[$0] ?? "type \($0)" } }

    public var outcome: AuthOutcome { self.result == .success ? .success : .failure }

    /// The user as the reports show it: DOMAIN\user when a domain is named.
    public var account: String {
        self.domain.isEmpty || self.domain == "-" ? self.username : self.domain + "\\" + self.username
    }
}

extension WindowsLogon {
    /// The logon an event reports, or nil for other events (and for the system's own logons:
    /// SYSTEM, LOCAL SERVICE, computer accounts ending in "$", "-" as user).
    public init?(event: WindowsEvent) {
        guard Self.isSecurity(event) else { return nil }
        func field(_ name: String, _ position: Int? = nil) -> String? {
            if let value = event[name] { return value }
            if let position { return event[String(position)] }
            return nil
        }
        let id = event.eventID
        var result: Result
        var user: String?
        var domain: String?
        var address: String?
        var port: String?
        var logonType: String?
        var status: String?
        var subStatus: String?
        var workstation: String?
        switch id {
        case 4624, 4625:
            result = id == 4624 ? .success : .failure
            (user, domain) = (field("TargetUserName"), field("TargetDomainName"))
            (address, port, logonType) = (field("IpAddress"), field("IpPort"), field("LogonType"))
            (status, subStatus, workstation) = (field("Status"), field("SubStatus"), field("WorkstationName"))
        case 4771:
            result = .failure
            user = field("TargetUserName")
            (address, port, status) = (field("IpAddress"), field("IpPort"), field("Status"))
        case 4776:
            user = field("TargetUserName")
            (status, workstation) = (field("Status"), field("Workstation"))
            result = Self.code(status) == 0 ? .success : .failure
        case 4740:
            result = .lockout
            (user, domain, workstation) = (field("TargetUserName"), field("TargetDomainName"), field("CallerComputerName"))
        case 528:
            result = .success
            (user, domain, logonType) = (field("TargetUserName", 1), field("TargetDomainName", 2), field("LogonType", 4))
            (workstation, address, port) = (field("WorkstationName", 7), field("IpAddress", 14), field("IpPort", 15))
        case 529...537, 539:
            result = .failure
            (user, domain, logonType) = (field("TargetUserName", 1), field("TargetDomainName", 2), field("LogonType", 3))
            (workstation, address, port) = (field("WorkstationName", 6), field("IpAddress", 12), field("IpPort", 13))
            status = field("Status") ?? Self.legacyStatus[id].map { "0x" + String($0, radix: 16) }
        case 680:
            (user, workstation, status) = (field("TargetUserName", 2), field("Workstation", 3), field("Status", 4))
            result = Self.code(status) == 0 ? .success : .failure
        default:
            return nil
        }
        guard let name = user?.trimmingWhitespace(), !name.isEmpty, name != "-" else { return nil }
        if result == .success, Self.systemAccounts.contains(name.uppercased()) || name.hasSuffix("$") { return nil }
        self.init(
            eventID: id, result: result, time: event.time, username: name, domain: domain ?? "",
            client: Self.address(address), port: port.flatMap { Int($0) }.flatMap { $0 > 0 ? $0 : nil },
            logonType: logonType.flatMap { Int($0.trimmingWhitespace()) }, status: Self.code(status), subStatus: Self.code(subStatus),
            computer: event.computer, workstation: workstation.map { $0 == "-" ? "" : $0 } ?? "")
    }

    static let systemAccounts: Set<String> = ["SYSTEM", "LOCAL SERVICE", "NETWORK SERVICE", "ANONYMOUS LOGON", "DWM-1", "DWM-2", "DWM-3", "UMFD-0", "UMFD-1", "UMFD-2", "UMFD-3"]

    /// The 2003 failure events say why by their number.
    static let legacyStatus: [Int: UInt32] = [
        529: 0xC000_006D, 530: 0xC000_006F, 531: 0xC000_0072, 532: 0xC000_0193, 533: 0xC000_0070,
        534: 0xC000_015B, 535: 0xC000_0071, 536: 0xC000_005E, 537: 0xC000_006D, 539: 0xC000_0234,
    ]

    static func isSecurity(_ event: WindowsEvent) -> Bool {
        let provider = event.provider
        if provider == "Microsoft-Windows-Security-Auditing" || provider == "Security" || provider == "Microsoft-Windows-Eventlog" { return true }
        if provider.isEmpty { return event.channel.isEmpty || event.channel == "Security" }
        return event.channel == "Security" && provider.hasPrefix("Microsoft-Windows-Security")
    }

    /// "0xc000006a", "0xC000006A", "3221225578", "%%2313" (an unresolved message: nil).
    static func code(_ text: String?) -> UInt32? {
        guard let text = text?.trimmingWhitespace(), !text.isEmpty else { return nil }
        if text.hasPrefix("0x") || text.hasPrefix("0X") { return UInt32(text.dropFirst(2), radix: 16) }
        return UInt32(text)
    }

    /// "192.0.2.7", "::ffff:192.0.2.7" (Kerberos writes IPv4 so; IPAddress keys it as 192.0.2.7),
    /// "fe80::1%12", "[2001:db8::1]";
    /// nil for "-", "" and anything else that is not an address.
    static func address(_ text: String?) -> IPAddress? {
        guard var text = text?.trimmingWhitespace(), !text.isEmpty, text != "-" else { return nil }
        if text.hasPrefix("[") && text.hasSuffix("]") { text = String(text.dropFirst().dropLast()) }
        if let percent = text.firstIndex(of: "%") { text = String(text[..<percent]) }
        return IPAddress(text)
    }
}

/// The codes Windows writes, in words.
public enum WindowsCodes {
    public static let ntStatus: [UInt32: String] = [
        0x0000_0000: "success",
        0xC000_006A: "wrong password",
        0xC000_0064: "no such user",
        0xC000_006D: "bad user name or password",
        0xC000_006E: "account restriction",
        0xC000_006F: "outside the allowed hours",
        0xC000_0070: "workstation not allowed",
        0xC000_0071: "password expired",
        0xC000_0072: "account disabled",
        0xC000_0193: "account expired",
        0xC000_0133: "clock skew",
        0xC000_015B: "logon type not granted",
        0xC000_0224: "password must change",
        0xC000_0234: "account locked out",
        0xC000_005E: "no logon servers",
        0xC000_0413: "authentication firewall",
        0xC000_018C: "trust failure",
        0xC000_0192: "netlogon not started",
    ]

    public static let kerberos: [UInt32: String] = [
        0x6: "no such user",
        0x7: "no such server",
        0x12: "account disabled, expired or locked out",
        0x17: "password expired",
        0x18: "wrong password",
        0x25: "clock skew",
        0x20: "ticket expired",
    ]

    public static let logonTypes: [Int: String] = [
        2: "interactive", 3: "network", 4: "batch", 5: "service", 7: "unlock", 8: "network cleartext",
        9: "new credentials", 10: "remote interactive", 11: "cached interactive", 12: "cached remote interactive", 13: "cached unlock",
    ]
}

extension WindowsCodes {
    /// 0x0000000c.
    public static func hex(_ code: UInt32) -> String {
        let digits = String(code, radix: 16)
        return "0x" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}
