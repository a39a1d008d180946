#!/usr/bin/env python3
"""Writes the seed corpus for the `wire_parse` fuzz target: real packet shapes as raw
Ethernet frames, with correct lengths and checksums, under seeds/wire_parse/.

Run from dataplane/fuzz: `python3 gen_seeds.py`. The output is committed; re-run only to
add shapes.
"""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds", "wire_parse")

MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")
V4_A = bytes([10, 0, 0, 1])
V4_B = bytes([10, 0, 0, 2])
V6_A = bytes.fromhex("20010db8000000000000000000000001")
V6_B = bytes.fromhex("20010db8000000000000000000000002")
LL_A = bytes.fromhex("fe800000000000000000000000000001")
LL_B = bytes.fromhex("fe800000000000000000000000000002")
SNMC_B = bytes.fromhex("ff0200000000000000000001ff000002")


def csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s > 0xFFFF:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def eth(ethertype: int, payload: bytes, dst=MAC_B, src=MAC_A) -> bytes:
    return dst + src + struct.pack("!H", ethertype) + payload


def vlan(tpid: int, vid: int, pcp: int, inner_type: int) -> bytes:
    return struct.pack("!HHH", tpid, (pcp << 13) | vid, inner_type)


def ipv4(proto: int, payload: bytes, src=V4_A, dst=V4_B, options=b"", ttl=64, flags_off=0x4000) -> bytes:
    ihl = 5 + len(options) // 4
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, 4 * ihl + len(payload), 0x1234, flags_off,
                      ttl, proto, 0, src, dst) + options
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def ipv6(nxt: int, payload: bytes, src=V6_A, dst=V6_B, hlim=64) -> bytes:
    return struct.pack("!IHBB16s16s", 0x60000000, len(payload), nxt, hlim, src, dst) + payload


def ph4(src, dst, proto, length):
    return src + dst + struct.pack("!BBH", 0, proto, length)


def ph6(src, dst, proto, length):
    return src + dst + struct.pack("!IxxxB", length, proto)


def udp(sport, dport, payload, ph) -> bytes:
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    c = csum(ph(17, len(seg)) + seg) or 0xFFFF
    return seg[:6] + struct.pack("!H", c) + seg[8:]


def tcp(sport, dport, flags, options, payload, ph) -> bytes:
    doff = 5 + len(options) // 4
    seg = struct.pack("!HHIIHHHH", sport, dport, 1000, 0, (doff << 12) | flags, 65535, 0, 0) + options + payload
    c = csum(ph(6, len(seg)) + seg)
    return seg[:16] + struct.pack("!H", c) + seg[18:]


def icmp4_echo(ident, seq, data) -> bytes:
    m = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + data
    return m[:2] + struct.pack("!H", csum(m)) + m[4:]


def icmp6(src, dst, body: bytes) -> bytes:
    c = csum(ph6(src, dst, 58, len(body)) + body)
    return body[:2] + struct.pack("!H", c) + body[4:]


def p4(proto):
    return lambda p, n: ph4(V4_A, V4_B, p, n)


def p6(src=V6_A, dst=V6_B):
    return lambda p, n: ph6(src, dst, p, n)


DNS_QUERY = bytes.fromhex("abcd01000001000000000000076578616d706c6503636f6d0000010001")
SYN_OPTS = bytes.fromhex("020405b4" "01030307" "04020101" "080a00000001000000000000")[:20]

seeds = {}

seeds["ipv4_udp_dns"] = eth(0x0800, ipv4(17, udp(54321, 53, DNS_QUERY, lambda p, n: ph4(V4_A, V4_B, p, n))))
seeds["ipv4_tcp_syn_opts"] = eth(0x0800, ipv4(6, tcp(49152, 80, 0x002, SYN_OPTS, b"", p4(6))))
seeds["ipv4_tcp_data"] = eth(0x0800, ipv4(6, tcp(80, 49152, 0x018, b"", b"HTTP/1.1 200 OK\r\n\r\n", p4(6))))
seeds["ipv4_options_router_alert"] = eth(0x0800, ipv4(2, bytes.fromhex("1164ee9b00000000"), options=bytes.fromhex("94040000")))
seeds["ipv4_fragment_nonfirst"] = eth(0x0800, ipv4(17, b"\x55" * 24, flags_off=0x2000 | 185))
seeds["ipv4_ttl1_icmp_echo"] = eth(0x0800, ipv4(1, icmp4_echo(0x1234, 1, b"abcdefgh"), ttl=1))
seeds["vlan_ipv4_icmp_echo"] = eth(0x8100, vlan(0x8100, 100, 5, 0x0800)[2:] + ipv4(1, icmp4_echo(7, 42, b"\x00" * 32)))
seeds["qinq_88a8_ipv6_udp"] = eth(0x88A8, vlan(0x88A8, 10, 0, 0x8100)[2:] + vlan(0x8100, 20, 3, 0x86DD)[2:]
                                   + ipv6(17, udp(5000, 5001, b"payload!", p6())))
seeds["qinq_9100_ipv4_udp"] = eth(0x9100, vlan(0x9100, 300, 0, 0x8100)[2:] + vlan(0x8100, 400, 0, 0x0800)[2:]
                                   + ipv4(17, udp(1, 2, b"", p4(17))))
seeds["arp_request"] = eth(0x0806, struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, MAC_A, V4_A, b"\0" * 6, V4_B),
                           dst=b"\xff" * 6)
seeds["arp_reply"] = eth(0x0806, struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 2, MAC_B, V4_B, MAC_A, V4_A))
seeds["ipv6_icmpv6_echo"] = eth(0x86DD, ipv6(58, icmp6(V6_A, V6_B, struct.pack("!BBHHH", 128, 0, 0, 1, 1) + b"ping")))
ns = struct.pack("!BBHI16s", 135, 0, 0, 0, LL_B) + bytes([1, 1]) + MAC_A
seeds["ipv6_ndp_ns_slla"] = eth(0x86DD, ipv6(58, icmp6(LL_A, SNMC_B, ns), src=LL_A, dst=SNMC_B, hlim=255),
                                dst=bytes.fromhex("3333ff000002"))
na = struct.pack("!BBHI16s", 136, 0, 0, 0x60000000, LL_B) + bytes([2, 1]) + MAC_B
seeds["ipv6_ndp_na_tlla"] = eth(0x86DD, ipv6(58, icmp6(LL_B, LL_A, na), src=LL_B, dst=LL_A, hlim=255), src=MAC_B, dst=MAC_A)
hbh = bytes([43, 0, 5, 2, 0, 0, 1, 0])
rt = bytes([44, 2, 4, 1, 0, 0, 0, 0]) + V6_B
frag = struct.pack("!BBHI", 60, 0, 0x0001, 0xDEADBEEF)
dopt = bytes([17, 0, 1, 4, 0, 0, 0, 0])
u = udp(4000, 4001, b"ext-chain", p6())
seeds["ipv6_ext_chain_udp"] = eth(0x86DD, ipv6(0, hbh + rt + frag + dopt + u))
seeds["ipv6_frag_nonfirst"] = eth(0x86DD, ipv6(44, struct.pack("!BBHI", 6, 0, (100 << 3), 7) + b"\xaa" * 16))
seeds["ipv6_routing_tcp"] = eth(0x86DD, ipv6(43, bytes([6, 2, 4, 0, 0, 0, 0, 0]) + V6_B + tcp(443, 50000, 0x010, b"", b"", p6())))
inner = eth(0x0800, ipv4(1, icmp4_echo(1, 2, b"inner")), dst=bytes.fromhex("02000000000b"), src=bytes.fromhex("02000000000a"))
vx = bytes([0x08, 0, 0, 0]) + struct.pack("!I", 0x123456 << 8) + inner
seeds["ipv4_udp_vxlan_inner_icmp"] = eth(0x0800, ipv4(17, udp(49999, 4789, vx, p4(17))))
inner6 = eth(0x86DD, ipv6(17, udp(53, 53, DNS_QUERY, p6())))
vx6 = bytes([0x08, 0, 0, 0]) + struct.pack("!I", 42 << 8) + inner6
seeds["ipv6_udp_vxlan_inner_ipv6"] = eth(0x86DD, ipv6(17, udp(50000, 4789, vx6, p6())))
seeds["lldp_unknown_ethertype"] = eth(0x88CC, bytes.fromhex("0207040200000000010403020001060200780000"),
                                      dst=bytes.fromhex("0180c200000e"))
# Ethernet minimum-size frame: IPv4 shorter than the frame, padded.
seeds["ipv4_udp_padded"] = eth(0x0800, ipv4(17, udp(7, 7, b"", p4(17)))) + b"\0" * 18

os.makedirs(OUT, exist_ok=True)
for name, data in sorted(seeds.items()):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"wrote {len(seeds)} seeds to {OUT}")
