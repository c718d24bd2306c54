import Testing

@testable import GuardCore

@Suite("Addresses and networks")
struct AddressTests {
    @Test("IPv4 text round-trips and rejects junk")
    func ipv4() {
        #expect(IPAddress("192.0.2.1")?.description == "192.0.2.1")
        #expect(IPAddress("192.0.2.1")?.isIPv4 == true)
        for bad in ["192.0.2", "192.0.2.256", "192.0.2.01", "1.2.3.4.5", "", "a.b.c.d", "1..2.3", " 1.2.3.4"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test("IPv6 parses every form and prints RFC 5952")
    func ipv6() {
        #expect(IPAddress("2001:db8::1")?.description == "2001:db8::1")
        #expect(IPAddress("2001:0db8:0000:0000:0000:0000:0000:0001")?.description == "2001:db8::1")
        #expect(IPAddress("::")?.description == "::")
        #expect(IPAddress("::1")?.description == "::1")
        #expect(IPAddress("fe80:0:0:0:1::")?.description == "fe80::1:0:0:0")  // a tie: the first run is compressed
        #expect(IPAddress("1:0:0:2:0:0:0:3")?.description == "1:0:0:2::3")
        #expect(IPAddress("2001:db8:0:0:1:0:0:1")?.description == "2001:db8::1:0:0:1")
        #expect(IPAddress("64:ff9b::192.0.2.33")?.description == "64:ff9b::c000:221")
        for bad in ["2001:db8:::1", "1:2:3:4:5:6:7:8:9", "2001:db8::g", ":1", "1:", "12345::1", "1::2::3"] {
            #expect(IPAddress(bad) == nil, "\(bad)")
        }
    }

    @Test("an IPv4-mapped IPv6 address is the IPv4 address")
    func mapped() {
        #expect(IPAddress("::ffff:192.0.2.7") == IPAddress("192.0.2.7"))
        #expect(IPAddress("::ffff:192.0.2.7")?.description == "192.0.2.7")
    }

    @Test("masking and networks")
    func networks() throws {
        let address = try #require(IPAddress("192.0.2.77"))
        #expect(address.masked(to: 24).description == "192.0.2.0")
        #expect(address.masked(to: 0).description == "0.0.0.0")
        let v6 = try #require(IPAddress("2001:db8:1:2:3:4:5:6"))
        #expect(v6.masked(to: 64).description == "2001:db8:1:2::")
        #expect(v6.masked(to: 48).description == "2001:db8:1::")
        #expect(v6.masked(to: 127).description == "2001:db8:1:2:3:4:5:6")
        let net = try #require(IPNetwork("10.1.0.0/16"))
        #expect(net.contains(IPAddress("10.1.200.3")!))
        #expect(!net.contains(IPAddress("10.2.0.1")!))
        #expect(!net.contains(IPAddress("::ffff:10.3.0.1")!))
        #expect(IPNetwork("10.1.2.3/33") == nil)
        #expect(IPNetwork("10.1.2.3/x") == nil)
        #expect(IPNetwork("10.1.2.3")?.prefixLength == 32)
        #expect(NetworkList.everywhere.contains(IPAddress("2001:db8::1")!))
        #expect(NetworkList.everywhere.contains(IPAddress("203.0.113.9")!))
        #expect(!NetworkList([]).contains(IPAddress("203.0.113.9")!))
        // IPv4 networks never match IPv6 clients and back.
        #expect(!IPNetwork("0.0.0.0/0")!.contains(IPAddress("::1")!))
    }

    @Test("HOST:PORT parsing")
    func hostPort() {
        #expect(HostPort("127.0.0.1:2525") == HostPort(host: "127.0.0.1", port: 2525))
        #expect(HostPort("[::1]:25") == HostPort(host: "::1", port: 25))
        #expect(HostPort("mail.example.com:587")?.port == 587)
        #expect(HostPort("[::1]:25")?.description == "[::1]:25")
        for bad in ["127.0.0.1", "127.0.0.1:", ":25", "::1:25", "host:99999", "host:2x"] {
            #expect(HostPort(bad) == nil, "\(bad)")
        }
    }
}
