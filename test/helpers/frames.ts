/**
 * The frame a model packet stands for, for the datapath tests: IPv4 or IPv6 by its
 * addresses, TCP/UDP/ICMP/ICMPv6 by its protocol, and a fragment as it travels: a first
 * fragment carries the L4 header (IPv4 MF, or an IPv6 Fragment header with M set), a
 * later one only payload bytes behind its IP header (or Fragment header). An ICMP error
 * carries the packet it quotes.
 */
import type { ModelPacket } from './model.js';
import { eth, IPPROTO, type Frame } from './packet.js';

const PROTO = { TCP: IPPROTO.TCP, UDP: IPPROTO.UDP, ICMP: IPPROTO.ICMP, ICMPv6: IPPROTO.ICMPV6 } as const;

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
  if (v6) {
    ip = eth().ipv6({ src: p.src, dst: p.dst });
    if (f) ip = ip.fragment({ id: f.id, more: f.more }); // offset 0: a first or an atomic fragment
  } else {
    ip = eth().ipv4({ src: p.src, dst: p.dst, ...(f ? { id: f.id, mf: f.more } : {}) });
  }
  switch (p.protocol) {
    case 'TCP':
      return ip.tcp({ sport: p.sport!, dport: p.dport!, flags: p.tcpFlags ?? 0x02 });
    case 'UDP':
      return ip.udp({ sport: p.sport!, dport: p.dport! }).payload(8);
    case 'ICMP':
      return ip.icmp({ type: p.icmpType!, id: p.icmpId ?? 0 }).payload(p.quoted ? quote(p.quoted) : 16);
    case 'ICMPv6':
      return ip.icmpv6({ type: p.icmpType!, id: p.icmpId ?? 0 }).payload(p.quoted ? quote(p.quoted) : 16);
  }
}
