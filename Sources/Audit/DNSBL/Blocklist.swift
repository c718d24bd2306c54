// DNS blocklists (RFC 5782): an address is looked up as its reversed form under the list's
// zone (1.2.0.192.zen.spamhaus.org; IPv6 as 32 reversed nibbles). An A record in 127.0.0.0/8
// means listed, its value says why (and the TXT record in words); no such name means not
// listed. Anything else is an error, not a verdict: a resolver that fails, an answer outside
// 127/8 (a resolver that rewrites NXDOMAIN), or Spamhaus's 127.255.255.x refusals.

import GuardCore

public struct BlocklistZone: Sendable, Equatable {
    public var zone: String
    /// What a return code means, where the list documents it.
    public var codes: [String: String]

    public init(_ zone: String, codes: [String: String] = [:]) {
        self.zone = zone
        self.codes = codes
    }

    /// Lists that need no registration for a few queries, and say what their codes mean.
    public static let defaults: [BlocklistZone] = [
        BlocklistZone("zen.spamhaus.org", codes: [
            "127.0.0.2": "SBL: a known spam source", "127.0.0.3": "SBL CSS: snowshoe spam",
            "127.0.0.4": "XBL: exploited host (CBL)", "127.0.0.5": "XBL: exploited host", "127.0.0.6": "XBL: exploited host",
            "127.0.0.7": "XBL: exploited host", "127.0.0.9": "SBL DROP: hijacked network",
            "127.0.0.10": "PBL: end-user address (ISP policy)", "127.0.0.11": "PBL: end-user address (Spamhaus policy)",
        ]),
        BlocklistZone("bl.spamcop.net", codes: ["127.0.0.2": "reported as a spam source"]),
        BlocklistZone("psbl.surriel.com", codes: ["127.0.0.2": "sent mail to spam traps"]),
        BlocklistZone("bl.mailspike.net", codes: ["127.0.0.2": "poor reputation"]),
        BlocklistZone("dnsbl-1.uceprotect.net", codes: ["127.0.0.2": "sent spam to traps (this address)"]),
    ]

    /// Spamhaus's answers that refuse the query rather than list the address.
    static let refusals: [String: String] = [
        "127.255.255.252": "the query was refused: the zone name is mistyped",
        "127.255.255.254": "the query was refused: it came through a public or open resolver (use your own resolver)",
        "127.255.255.255": "the query was refused: too many queries from this resolver",
    ]
}

public enum BlocklistResult: Sendable, Equatable {
    /// Return codes (127.0.0.x) with their meaning where known, and the TXT reason.
    case listed(codes: [String], meanings: [String], reason: String?)
    case notListed
    case error(String)
}

public enum Blocklist {
    /// `address` reversed for a lookup: "4.3.2.1" for 1.2.3.4, 32 nibbles for IPv6.
    public static func reversedName(_ address: IPAddress) -> String {
        if let v4 = address.ipv4 {
            return [v4 & 0xFF, v4 >> 8 & 0xFF, v4 >> 16 & 0xFF, v4 >> 24].map { String($0) }.joined(separator: ".")
        }
        var nibbles: [String] = []
        for word in [address.low, address.high] {
            for shift in stride(from: 0, to: 64, by: 4) { nibbles.append(String(word >> UInt64(shift) & 0xF, radix: 16)) }
        }
        return nibbles.joined(separator: ".")
    }

    /// What an A reply (and, when listed, a TXT reply) says about the address.
    public static func interpret(_ response: DNSResponse, txt: DNSResponse?, zone: BlocklistZone) -> BlocklistResult {
        switch response.rcode {
        case 3:
            return .notListed
        case 0 where response.addresses.isEmpty:
            return .notListed
        case 0:
            if let refusal = response.addresses.lazy.compactMap({ BlocklistZone.refusals[$0] }).first { return .error(refusal) }
            let outside = response.addresses.filter { !$0.hasPrefix("127.") }
            if !outside.isEmpty {
                return .error("the answer \(outside.joined(separator: ", ")) is not a blocklist code (a resolver that rewrites missing names?)")
            }
            let meanings = response.addresses.compactMap { zone.codes[$0] }
            let reason = txt?.texts.first { !$0.isEmpty }
            return .listed(codes: response.addresses, meanings: meanings, reason: reason)
        case 2:
            return .error("the resolver failed (SERVFAIL)")
        case 5:
            return .error("the resolver refused the query (REFUSED)")
        default:
            return .error("the resolver answered with error code \(response.rcode)")
        }
    }
}

/// One address against one zone.
public struct BlocklistAnswer: Sendable, Equatable {
    public var address: IPAddress
    public var zone: String
    public var result: BlocklistResult
}

extension Blocklist {
    /// Every address against every zone, a few questions at a time; the answers in the order
    /// of the addresses, then of the zones.
    public static func check(_ addresses: [IPAddress], zones: [BlocklistZone], client: DNSClient, parallel: Int = 8) async -> [BlocklistAnswer] {
        let jobs = addresses.flatMap { address in zones.map { (address, $0) } }
        var answers = [BlocklistAnswer?](repeating: nil, count: jobs.count)
        await withTaskGroup(of: (Int, BlocklistAnswer).self) { group in
            var next = 0
            func start() {
                guard next < jobs.count else { return }
                let (index, (address, zone)) = (next, jobs[next])
                next += 1
                group.addTask { (index, BlocklistAnswer(address: address, zone: zone.zone, result: await self.lookup(address, in: zone, client: client))) }
            }
            for _ in 0..<min(parallel, jobs.count) { start() }
            while let (index, answer) = await group.next() {
                answers[index] = answer
                start()
            }
        }
        return answers.compactMap { $0 }
    }

    public static func lookup(_ address: IPAddress, in zone: BlocklistZone, client: DNSClient) async -> BlocklistResult {
        let name = self.reversedName(address) + "." + zone.zone
        do {
            let response = try await client.ask(name, type: .a)
            var txt: DNSResponse?
            if response.rcode == 0, !response.addresses.isEmpty { txt = try? await client.ask(name, type: .txt) }
            return self.interpret(response, txt: txt, zone: zone)
        } catch {
            return .error("\(error)")
        }
    }
}
