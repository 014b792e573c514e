/**
 * IP prefixes as policies use them (ipBlock `cidr` and `except`): parsed once into a
 * family, the address as a number and a length, so containment is arithmetic. Two
 * prefixes of one family are either nested or disjoint.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { IPv6 } from 'ip-num';

export type Family = 4 | 6;

export interface Prefix {
  family: Family;
  /** The address with its host bits cleared. */
  bits: bigint;
  len: number;
}

const WIDTH = { 4: 32, 6: 128 } as const;

/** An address as its family and its value, or undefined when the text is not one. */
export function parseAddress(ip: string): { family: Family; value: bigint } | undefined {
  if (isIPv4(ip)) return { family: 4, value: ip.split('.').reduce((v, o) => (v << 8n) | BigInt(Number(o)), 0n) };
  if (isIPv6(ip)) return { family: 6, value: IPv6.fromString(ip).getValue() };
  return undefined;
}

const mask = (family: Family, len: number) => ((1n << BigInt(WIDTH[family])) - 1n) ^ ((1n << BigInt(WIDTH[family] - len)) - 1n);

/**
 * `a.b.c.d/n` or `x::/n`: the prefix, host bits cleared (Kubernetes accepts them set), or
 * why it is not one.
 */
export function parsePrefix(text: string): Prefix | string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  const addr = m ? parseAddress(m[1]!) : undefined;
  if (!m || !addr) return `not a CIDR (want a.b.c.d/n or an IPv6 prefix such as fd00::/64): ${JSON.stringify(text)}`;
  const len = Number(m[2]);
  if (len > WIDTH[addr.family]) return `prefix length ${len} is longer than an IPv${addr.family} address (${WIDTH[addr.family]} bits): ${JSON.stringify(text)}`;
  return { family: addr.family, bits: addr.value & mask(addr.family, len), len };
}

/** parsePrefix for text already checked (the store's, a test's); throws on bad text. */
export function prefixOf(text: string): Prefix {
  const p = parsePrefix(text);
  if (typeof p === 'string') throw new TypeError(p);
  return p;
}

/** Canonical text of an address: dotted quad, or IPv6 in its shortest form (RFC 5952: `fd00:10:244:1::a`). */
export function formatAddress(family: Family, value: bigint): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => (value >> s) & 0xffn).join('.');
  // The URL parser writes an IPv6 address in its shortest form.
  return new URL(`http://[${IPv6.fromBigInt(value).toString()}]/`).hostname.slice(1, -1);
}

/** Canonical text: `10.1.0.0/16`, `fd00::/64`. */
export function prefixString(p: Prefix): string {
  return `${formatAddress(p.family, p.bits)}/${p.len}`;
}

/** The bits of p's first `len` bits, host bits cleared (len ≤ p.len): the address of p's containing /len. */
export function truncate(p: Prefix, len: number): bigint {
  return p.bits & mask(p.family, len);
}

/** Whether `inner` lies within `outer` (equal prefixes included). */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  return outer.family === inner.family && outer.len <= inner.len && (inner.bits & mask(outer.family, outer.len)) === outer.bits;
}

/** Whether address `ip` lies within p (false for another family or a non-address). */
export function prefixHasAddress(p: Prefix, ip: string): boolean {
  const a = parseAddress(ip);
  return a !== undefined && a.family === p.family && (a.value & mask(p.family, p.len)) === p.bits;
}

/** The /32 or /128 of one address. */
export function hostPrefix(ip: string): Prefix {
  const a = parseAddress(ip);
  if (!a) throw new TypeError(`not an IP address: ${ip}`);
  return { family: a.family, bits: a.value, len: WIDTH[a.family] };
}
