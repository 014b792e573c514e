/**
 * The frame a model packet stands for, for the datapath tests: IPv4 or IPv6 by its
 * addresses, TCP/UDP/ICMP/ICMPv6 by its protocol, and a fragment as it travels: a first
 * fragment carries the L4 header (IPv4 MF, or an IPv6 Fragment header with M set), a
 * later one only payload bytes behind its IP header (or Fragment header). An ICMP error
 * carries the packet it quotes.
 */
import type { ModelPacket } from './model.js';
import { eth, IPPROTO, type Frame } from './packet.js';

const PROTO = { TCP: IPPROTO.TCP, UDP: IPPROTO.UDP, SCTP: 132, ICMP: IPPROTO.ICMP, ICMPv6: IPPROTO.ICMPV6 } as const;

/** An SCTP common header (ports, verification tag, checksum left 0: the datapath never reads it) and one INIT chunk. */
function sctpCommonHeader(sport: number, dport: number): Buffer {
  const b = Buffer.alloc(32);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  b[12] = 1; // INIT
  b.writeUInt16BE(20, 14);
  return b;
}

/** What an ICMP error quotes of packet q: its IP packet (no Ethernet header), whole. */
function quote(q: ModelPacket): Buffer {
  return frameOf(q).build().subarray(14);
}

export function frameOf(p: ModelPacket): Frame {
  const v6 = p.src.includes(':');
  const f = p.fragment;
  if (f && f.offset > 0) {
    return v6
      ? eth().ipv6({ src: p.src, dst: p.dst }).fragment({ id: f.id, offset: f.offset, more: f.more, nextHeader: PROTO[p.protocol] }).payload(16)
      : eth().ipv4({ src: p.src, dst: p.dst, id: f.id, fragOffset: f.offset, mf: f.more, protocol: PROTO[p.protocol] }).payload(16);
  }
  let ip: Frame;
  // SCTP has no layer in packet.ts: its common header and an INIT chunk are payload behind the protocol number.
  const sctp = p.protocol === 'SCTP' ? { protocol: PROTO.SCTP } : {};
  if (v6) {
    ip = eth().ipv6({ src: p.src, dst: p.dst, ...(p.protocol === 'SCTP' && !f ? { nextHeader: PROTO.SCTP } : {}) });
    if (f) ip = ip.fragment({ id: f.id, more: f.more, ...(p.protocol === 'SCTP' ? { nextHeader: PROTO.SCTP } : {}) }); // offset 0: a first or an atomic fragment
  } else {
    ip = eth().ipv4({ src: p.src, dst: p.dst, ...sctp, ...(f ? { id: f.id, mf: f.more } : {}) });
  }
  switch (p.protocol) {
    case 'TCP':
      return ip.tcp({ sport: p.sport!, dport: p.dport!, flags: p.tcpFlags ?? 0x02 });
    case 'UDP':
      return ip.udp({ sport: p.sport!, dport: p.dport! }).payload(8);
    case 'SCTP':
      return ip.payload(sctpCommonHeader(p.sport!, p.dport!));
    case 'ICMP':
      return ip.icmp({ type: p.icmpType!, id: p.icmpId ?? 0 }).payload(p.quoted ? quote(p.quoted) : 16);
    case 'ICMPv6':
      return ip.icmpv6({ type: p.icmpType!, id: p.icmpId ?? 0 }).payload(p.quoted ? quote(p.quoted) : 16);
  }
}
