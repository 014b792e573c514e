/**
 * Addresses as the datapath keys them: a family tag and 16 bytes in network order
 * (IPv4 in the first 4, the rest zero). See bpf/include/tp_addr.h.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { IPv6 } from 'ip-num';
import { TP_FAMILY } from './constants.js';
import type { TpIpcidrKey, TpIpKey } from './structs.js';

export interface AddrBytes {
  family: number;
  addr: Buffer;
}

export function addrBytes(ip: string): AddrBytes {
  const addr = Buffer.alloc(16);
  if (isIPv4(ip)) {
    ip.split('.').forEach((o, i) => (addr[i] = Number(o)));
    return { family: TP_FAMILY.TP_FAMILY_IPV4, addr };
  }
  if (isIPv6(ip)) {
    let v = IPv6.fromString(ip).getValue();
    for (let i = 15; i >= 0; i--) {
      addr[i] = Number(v & 0xffn);
      v >>= 8n;
    }
    return { family: TP_FAMILY.TP_FAMILY_IPV6, addr };
  }
  throw new TypeError(`not an IP address: ${ip}`);
}

/** `a.b.c.d/p` with a valid address and 0 ≤ p ≤ 32 (host bits may be set; keys clear them). */
export function isIPv4Cidr(s: string): boolean {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  return m !== null && isIPv4(m[1]!) && Number(m[2]) <= 32;
}

/** An IPv4 CIDR (isIPv4Cidr) or `x::/p` with a valid IPv6 address and 0 ≤ p ≤ 128. */
export function isCidr(s: string): boolean {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s);
  return isIPv4Cidr(s) || (m !== null && isIPv6(m[1]!) && Number(m[2]) <= 128);
}

export function ipKey(ip: string): TpIpKey {
  return addrBytes(ip);
}

/** LPM key of a CIDR ("10.0.0.0/8", "fd00::/64"); host bits are cleared. */
export function ipcidrKey(cidr: string): TpIpcidrKey {
  const [ip, lenStr] = cidr.split('/');
  const { family, addr } = addrBytes(ip ?? '');
  const max = family === TP_FAMILY.TP_FAMILY_IPV4 ? 32 : 128;
  const len = lenStr === undefined ? max : Number(lenStr);
  if (!Number.isInteger(len) || len < 0 || len > max) throw new TypeError(`bad prefix length in ${cidr}`);
  for (let bit = len; bit < 128; bit++) addr[bit >> 3]! &= ~(0x80 >> (bit & 7));
  return { prefixlen: 32 + len, family, addr };
}

/** Canonical text of an address (IPv6 in its shortest form, as addrString writes it); undefined when it is none. */
export function canonicalIP(ip: string): string | undefined {
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return undefined;
  const { family, addr } = addrBytes(ip);
  return addrString(family, addr);
}

/** Text form of a key's address. */
export function addrString(family: number, addr: Buffer): string {
  if (family === TP_FAMILY.TP_FAMILY_IPV4) return `${addr[0]}.${addr[1]}.${addr[2]}.${addr[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(addr.readUInt16BE(i).toString(16));
  // The URL parser writes an IPv6 address in its shortest form (RFC 5952), as the lab and the store do.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}
