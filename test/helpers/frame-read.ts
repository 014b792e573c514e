/**
 * Reads back what a datapath test got: an Ethernet + IPv4 frame decoded into the fields
 * service translation touches, and whether each checksum verifies from scratch (with
 * packet.ts's RFC 1071 sum, never the datapath's arithmetic). IPv4 only, as services are.
 */
import { checksum } from './packet.js';

export interface ReadFrame {
  ethDst: string;
  ethSrc: string;
  src: string;
  dst: string;
  protocol: number;
  ipId: number;
  ttl: number;
  /** Flags and fragment offset, as on the wire. */
  fragField: number;
  /** IPv4 header checksum verifies. */
  ipChecksumOk: boolean;
  /** Ports of TCP, UDP or SCTP (undefined for a later fragment or another protocol). */
  sport?: number;
  dport?: number;
  /** L4 checksum verifies (TCP, UDP with a checksum, ICMP); undefined when not checked (fragment, SCTP, UDP 0). */
  l4ChecksumOk?: boolean;
  /** The raw L4 checksum field, when there is one. */
  l4Checksum?: number;
  tcp?: { seq: number; ack: number; flags: number; window: number };
  icmp?: { type: number; code: number };
}

const mac = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const ip4 = (b: Buffer) => [...b].join('.');

export function readFrame(f: Buffer): ReadFrame {
  const ihl = (f[14]! & 0x0f) * 4;
  const totLen = f.readUInt16BE(16);
  const ip = f.subarray(14, 14 + ihl);
  const l4 = f.subarray(14 + ihl, 14 + totLen);
  const fragField = f.readUInt16BE(20);
  const out: ReadFrame = {
    ethDst: mac(f.subarray(0, 6)),
    ethSrc: mac(f.subarray(6, 12)),
    src: ip4(f.subarray(26, 30)),
    dst: ip4(f.subarray(30, 34)),
    protocol: f[23]!,
    ipId: f.readUInt16BE(18),
    ttl: f[22]!,
    fragField,
    ipChecksumOk: checksum(ip) === 0,
  };
  if ((fragField & 0x1fff) !== 0) return out; // a later fragment: no L4 header
  const whole = (fragField & 0x2000) === 0;
  const pseudo = Buffer.alloc(12);
  f.copy(pseudo, 0, 26, 34);
  pseudo[9] = out.protocol;
  pseudo.writeUInt16BE(l4.length, 10);
  const l4Ok = () => checksum(Buffer.concat([pseudo, l4])) === 0;
  switch (out.protocol) {
    case 6:
      out.sport = l4.readUInt16BE(0);
      out.dport = l4.readUInt16BE(2);
      out.tcp = { seq: l4.readUInt32BE(4), ack: l4.readUInt32BE(8), flags: l4[13]!, window: l4.readUInt16BE(14) };
      out.l4Checksum = l4.readUInt16BE(16);
      if (whole) out.l4ChecksumOk = l4Ok();
      break;
    case 17:
      out.sport = l4.readUInt16BE(0);
      out.dport = l4.readUInt16BE(2);
      out.l4Checksum = l4.readUInt16BE(6);
      if (whole && out.l4Checksum !== 0) out.l4ChecksumOk = l4Ok();
      break;
    case 132:
      out.sport = l4.readUInt16BE(0);
      out.dport = l4.readUInt16BE(2);
      break;
    case 1:
      out.icmp = { type: l4[0]!, code: l4[1]! };
      out.l4Checksum = l4.readUInt16BE(2);
      out.l4ChecksumOk = checksum(l4) === 0;
      break;
  }
  return out;
}
