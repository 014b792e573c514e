/** SCTP packets for the service tests (packet.ts has no SCTP layer). */
import { eth, type Frame } from './packet.js';

/** CRC32c (Castagnoli, reflected 0x82f63b78), as SCTP uses; the datapath must leave it alone. */
export function crc32c(b: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of b) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return ~crc >>> 0;
}

/** An SCTP packet with one INIT (1) or INIT ACK (2) chunk, its CRC32c filled in. */
export function sctpF(src: string, dst: string, sport: number, dport: number, chunk: 1 | 2 = 1): Frame {
  const p = Buffer.alloc(32);
  p.writeUInt16BE(sport, 0);
  p.writeUInt16BE(dport, 2);
  p.writeUInt32BE(chunk === 1 ? 0 : 0x1234abcd, 4); // verification tag
  p[12] = chunk;
  p.writeUInt16BE(20, 14); // chunk length
  p.writeUInt32BE(chunk === 1 ? 0x1234abcd : 0x5678ef01, 16); // initiate tag
  p.writeUInt32BE(65535, 20); // a_rwnd
  p.writeUInt16BE(10, 24); // outbound streams
  p.writeUInt16BE(10, 26); // inbound streams
  p.writeUInt32BE(1, 28); // initial TSN
  p.writeUInt32LE(crc32c(p), 8);
  return src.includes(':') ? eth().ipv6({ src, dst, nextHeader: 132 }).payload(p) : eth().ipv4({ src, dst, protocol: 132 }).payload(p);
}
