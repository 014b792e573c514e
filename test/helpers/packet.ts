/**
 * A small packet builder for datapath tests, independent of the agent's code:
 *
 *   eth().ipv4({ src: '10.0.0.1', dst: '10.0.0.2' }).tcp({ sport: 1234, dport: 80, flags: 'S' }).build()
 *   eth().ipv6({ src: 'fd00::1', dst: 'fd00::2' }).hopByHop().udp({ sport: 53, dport: 53 }).build()
 *   eth().ipv4({ ..., mf: true }).udp(...)              a first fragment
 *   eth().ipv4({ ..., id: 7, fragOffset: 3, protocol: IPPROTO.UDP }).payload(16)   a later one
 *   eth().ipv6(...).fragment({ id: 7, offset: 3, nextHeader: IPPROTO.UDP }).payload(16)
 *   eth().vlan(10).ipv4(...).tcp(...)                   an 802.1Q-tagged frame
 *   eth({ type: 0x88cc }).payload(20)                   any other ethertype
 *   eth().ipv4(...).tcp(...).truncate(40)               the first 40 bytes only
 *
 * Each call returns a new Frame (a fixture can be extended in several ways). `build()`
 * fills in every length, next-header/ethertype field and checksum (IPv4 header, TCP,
 * UDP, ICMP, ICMPv6 with their pseudo-headers) from the layers that follow, unless a
 * field is given explicitly, which is how malformed packets are made. Frames shorter
 * than 60 bytes are zero-padded to 60, as a NIC pads on transmit; a truncated frame is
 * not padded (padding would put the missing bytes back as zeros).
 */

const ETHERTYPE = { IPV4: 0x0800, ARP: 0x0806, VLAN: 0x8100, IPV6: 0x86dd } as const;
/** IP protocol / IPv6 next-header numbers. */
export const IPPROTO = {
  HOPOPTS: 0,
  ICMP: 1,
  TCP: 6,
  UDP: 17,
  ROUTING: 43,
  FRAGMENT: 44,
  AH: 51,
  ICMPV6: 58,
  NONE: 59,
  DSTOPTS: 60,
} as const;
export const ETH_MIN_FRAME = 60;

export interface EthOptions {
  src?: string;
  dst?: string;
  /** Ethertype; default: from the next layer. */
  type?: number;
}

export interface Ipv4Options {
  src: string;
  dst: string;
  ttl?: number;
  id?: number;
  tos?: number;
  df?: boolean;
  /** More fragments. */
  mf?: boolean;
  /** Fragment offset in 8-byte units. */
  fragOffset?: number;
  /** Raw option bytes, zero-padded (end of options) to a multiple of 4. */
  options?: Buffer;
  /** Overrides: header length in 32-bit words, version, protocol, total length. */
  ihl?: number;
  version?: number;
  protocol?: number;
  totalLength?: number;
}

export interface Ipv6Options {
  src: string;
  dst: string;
  hopLimit?: number;
  flowLabel?: number;
  /** Overrides: version, next header, payload length. */
  version?: number;
  nextHeader?: number;
  payloadLength?: number;
}

export type TcpFlags = number | string;
export interface TcpOptions {
  sport: number;
  dport: number;
  /** Letters of F S R P A U (`'SA'`), or the flag byte. Default `'S'`. */
  flags?: TcpFlags;
  seq?: number;
  ack?: number;
  window?: number;
}

export interface UdpOptions {
  sport: number;
  dport: number;
}

export interface IcmpOptions {
  type: number;
  code?: number;
  /** Echo identifier and sequence (bytes 4..7 of the message). */
  id?: number;
  seq?: number;
}

export interface Icmpv6Options extends IcmpOptions {
  /** Neighbour solicitation/advertisement target; written after 4 reserved bytes instead of id/seq. */
  target?: string;
}

export interface ArpOptions {
  op?: number;
  senderIp?: string;
  targetIp?: string;
}

export interface FragmentHeaderOptions {
  /** Offset in 8-byte units. */
  offset?: number;
  more?: boolean;
  /** Identification (32 bits); default 1. */
  id?: number;
  /** Next header; default: from the next layer (a later fragment's payload has none, so give it). */
  nextHeader?: number;
}

type Layer =
  | { kind: 'eth'; o: EthOptions }
  | { kind: 'vlan'; vid: number; type?: number }
  | { kind: 'arp'; o: ArpOptions }
  | { kind: 'ipv4'; o: Ipv4Options }
  | { kind: 'ipv6'; o: Ipv6Options }
  /** IPv6 extension header; the length field is filled in (8-byte units after the first 8; AH: 4-byte units minus 2). */
  | { kind: 'ext6'; proto: number; body: Buffer; nextHeader?: number }
  | { kind: 'tcp'; o: TcpOptions }
  | { kind: 'udp'; o: UdpOptions }
  | { kind: 'icmp'; o: IcmpOptions }
  | { kind: 'icmpv6'; o: Icmpv6Options }
  | { kind: 'payload'; data: Buffer };

/** What goes in the ethertype or next-header field in front of a layer. */
function ethertypeOf(l: Layer | undefined): number | undefined {
  switch (l?.kind) {
    case 'vlan':
      return ETHERTYPE.VLAN;
    case 'arp':
      return ETHERTYPE.ARP;
    case 'ipv4':
      return ETHERTYPE.IPV4;
    case 'ipv6':
      return ETHERTYPE.IPV6;
    default:
      return undefined;
  }
}

function protocolOf(l: Layer | undefined): number | undefined {
  switch (l?.kind) {
    case 'ext6':
      return l.proto;
    case 'tcp':
      return IPPROTO.TCP;
    case 'udp':
      return IPPROTO.UDP;
    case 'icmp':
      return IPPROTO.ICMP;
    case 'icmpv6':
      return IPPROTO.ICMPV6;
    default:
      return undefined;
  }
}

export class Frame {
  private constructor(
    private readonly layers: readonly Layer[],
    private readonly cut?: number,
    private readonly padded = true,
  ) {}

  static eth(o: EthOptions = {}): Frame {
    return new Frame([{ kind: 'eth', o }]);
  }

  private with(l: Layer): Frame {
    return new Frame([...this.layers, l], this.cut, this.padded);
  }

  /** An 802.1Q tag (TPID 0x8100); the inner ethertype comes from the next layer. */
  vlan(vid: number, type?: number): Frame {
    return this.with({ kind: 'vlan', vid, type });
  }
  arp(o: ArpOptions = {}): Frame {
    return this.with({ kind: 'arp', o });
  }
  ipv4(o: Ipv4Options): Frame {
    return this.with({ kind: 'ipv4', o });
  }
  ipv6(o: Ipv6Options): Frame {
    return this.with({ kind: 'ipv6', o });
  }
  /** Hop-by-hop options header; default: one PadN option filling 8 bytes. */
  hopByHop(options?: Buffer): Frame {
    return this.with({ kind: 'ext6', proto: IPPROTO.HOPOPTS, body: optionsBody(options) });
  }
  /** Destination options header; default: one PadN option filling 8 bytes. */
  destOpts(options?: Buffer): Frame {
    return this.with({ kind: 'ext6', proto: IPPROTO.DSTOPTS, body: optionsBody(options) });
  }
  /** Routing header (experimental type 253, no segments left): 8 bytes. */
  routing(): Frame {
    return this.with({ kind: 'ext6', proto: IPPROTO.ROUTING, body: Buffer.from([0, 253, 0, 0, 0, 0]) });
  }
  /** Authentication header with a 12-byte ICV: 24 bytes. */
  ah(): Frame {
    const body = Buffer.alloc(22);
    body.writeUInt32BE(0x100, 2); // SPI
    body.writeUInt32BE(1, 6); // sequence number
    return this.with({ kind: 'ext6', proto: IPPROTO.AH, body });
  }
  /** Fragment header: 8 bytes. */
  fragment(o: FragmentHeaderOptions = {}): Frame {
    const body = Buffer.alloc(6);
    body.writeUInt16BE(((o.offset ?? 0) << 3) | (o.more ? 1 : 0), 0);
    body.writeUInt32BE(o.id ?? 1, 2);
    return this.with({ kind: 'ext6', proto: IPPROTO.FRAGMENT, body, nextHeader: o.nextHeader });
  }
  tcp(o: TcpOptions): Frame {
    return this.with({ kind: 'tcp', o });
  }
  udp(o: UdpOptions): Frame {
    return this.with({ kind: 'udp', o });
  }
  icmp(o: IcmpOptions): Frame {
    return this.with({ kind: 'icmp', o });
  }
  icmpv6(o: Icmpv6Options): Frame {
    return this.with({ kind: 'icmpv6', o });
  }
  /** Bytes after the last header: a buffer, or that many bytes of 0xab. */
  payload(data: Buffer | number): Frame {
    return this.with({ kind: 'payload', data: typeof data === 'number' ? Buffer.alloc(data, 0xab) : data });
  }
  /** Keeps only the first n bytes of the built frame (lengths still describe the whole packet). */
  truncate(n: number): Frame {
    return new Frame(this.layers, n, this.padded);
  }
  /** Builds without padding short frames to 60 bytes. */
  unpadded(): Frame {
    return new Frame(this.layers, this.cut, false);
  }

  build(): Buffer {
    let inner: Buffer = Buffer.alloc(0);
    for (let i = this.layers.length - 1; i >= 0; i--) inner = this.encode(i, inner);
    if (this.cut !== undefined) return inner.subarray(0, this.cut);
    if (this.padded && inner.length < ETH_MIN_FRAME) inner = Buffer.concat([inner, Buffer.alloc(ETH_MIN_FRAME - inner.length)]);
    return inner;
  }

  /** The nearest IP layer before layer i: its addresses make L4 pseudo-headers. */
  private ipBefore(i: number): { v6: boolean; src: Buffer; dst: Buffer } | undefined {
    for (let j = i - 1; j >= 0; j--) {
      const l = this.layers[j]!;
      if (l.kind === 'ipv4') return { v6: false, src: ipv4Bytes(l.o.src), dst: ipv4Bytes(l.o.dst) };
      if (l.kind === 'ipv6') return { v6: true, src: ipv6Bytes(l.o.src), dst: ipv6Bytes(l.o.dst) };
    }
    return undefined;
  }

  private encode(i: number, inner: Buffer): Buffer {
    const l = this.layers[i]!;
    const next = this.layers[i + 1];
    switch (l.kind) {
      case 'eth': {
        const h = Buffer.alloc(14);
        macBytes(l.o.dst ?? '02:00:00:00:00:02').copy(h, 0);
        macBytes(l.o.src ?? '02:00:00:00:00:01').copy(h, 6);
        h.writeUInt16BE(l.o.type ?? ethertypeOf(next) ?? 0x88b5 /* local experimental */, 12);
        return Buffer.concat([h, inner]);
      }
      case 'vlan': {
        const h = Buffer.alloc(4);
        h.writeUInt16BE(l.vid & 0x0fff, 0);
        h.writeUInt16BE(l.type ?? ethertypeOf(next) ?? 0x88b5, 2);
        return Buffer.concat([h, inner]);
      }
      case 'arp': {
        const h = Buffer.alloc(28);
        h.writeUInt16BE(1, 0); // Ethernet
        h.writeUInt16BE(ETHERTYPE.IPV4, 2);
        h[4] = 6;
        h[5] = 4;
        h.writeUInt16BE(l.o.op ?? 1, 6); // request
        macBytes('02:00:00:00:00:01').copy(h, 8);
        ipv4Bytes(l.o.senderIp ?? '10.244.1.1').copy(h, 14);
        ipv4Bytes(l.o.targetIp ?? '10.244.1.10').copy(h, 24);
        return Buffer.concat([h, inner]);
      }
      case 'ipv4': {
        const o = l.o;
        const opts = o.options ?? Buffer.alloc(0);
        const optLen = Math.ceil(opts.length / 4) * 4;
        const h = Buffer.alloc(20 + optLen);
        opts.copy(h, 20);
        h[0] = ((o.version ?? 4) << 4) | ((o.ihl ?? 5 + optLen / 4) & 0x0f);
        h[1] = o.tos ?? 0;
        h.writeUInt16BE(o.totalLength ?? h.length + inner.length, 2);
        h.writeUInt16BE(o.id ?? 0x1234, 4);
        h.writeUInt16BE((o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.fragOffset ?? 0) & 0x1fff), 6);
        h[8] = o.ttl ?? 64;
        h[9] = o.protocol ?? protocolOf(next) ?? 255;
        ipv4Bytes(o.src).copy(h, 12);
        ipv4Bytes(o.dst).copy(h, 16);
        h.writeUInt16BE(checksum(h), 10);
        return Buffer.concat([h, inner]);
      }
      case 'ipv6': {
        const o = l.o;
        const h = Buffer.alloc(40);
        h.writeUInt32BE((((o.version ?? 6) << 28) | ((o.flowLabel ?? 0) & 0xfffff)) >>> 0, 0);
        h.writeUInt16BE(o.payloadLength ?? inner.length, 4);
        h[6] = o.nextHeader ?? protocolOf(next) ?? IPPROTO.NONE;
        h[7] = o.hopLimit ?? 64;
        ipv6Bytes(o.src).copy(h, 8);
        ipv6Bytes(o.dst).copy(h, 24);
        return Buffer.concat([h, inner]);
      }
      case 'ext6': {
        const nh = l.nextHeader ?? protocolOf(next) ?? IPPROTO.NONE;
        const h = Buffer.concat([Buffer.from([nh, 0]), l.body]);
        h[1] = l.proto === IPPROTO.AH ? h.length / 4 - 2 : h.length / 8 - 1;
        return Buffer.concat([h, inner]);
      }
      case 'tcp': {
        const o = l.o;
        const h = Buffer.alloc(20);
        h.writeUInt16BE(o.sport, 0);
        h.writeUInt16BE(o.dport, 2);
        h.writeUInt32BE(o.seq ?? 1000, 4);
        h.writeUInt32BE(o.ack ?? 0, 8);
        h[12] = 5 << 4;
        h[13] = tcpFlags(o.flags ?? 'S');
        h.writeUInt16BE(o.window ?? 65535, 14);
        const seg = Buffer.concat([h, inner]);
        seg.writeUInt16BE(this.l4Checksum(i, IPPROTO.TCP, seg), 16);
        return seg;
      }
      case 'udp': {
        const h = Buffer.alloc(8);
        h.writeUInt16BE(l.o.sport, 0);
        h.writeUInt16BE(l.o.dport, 2);
        h.writeUInt16BE(8 + inner.length, 4);
        const dgram = Buffer.concat([h, inner]);
        dgram.writeUInt16BE(this.l4Checksum(i, IPPROTO.UDP, dgram) || 0xffff, 6);
        return dgram;
      }
      case 'icmp':
      case 'icmpv6': {
        const o = l.o;
        const target = l.kind === 'icmpv6' ? l.o.target : undefined;
        const h = Buffer.alloc(target ? 24 : 8);
        h[0] = o.type;
        h[1] = o.code ?? 0;
        if (target) {
          ipv6Bytes(target).copy(h, 8);
        } else {
          h.writeUInt16BE(o.id ?? 0, 4);
          h.writeUInt16BE(o.seq ?? 1, 6);
        }
        const msg = Buffer.concat([h, inner]);
        const sum = l.kind === 'icmp' ? checksum(msg) : this.l4Checksum(i, IPPROTO.ICMPV6, msg);
        msg.writeUInt16BE(sum, 2);
        return msg;
      }
      case 'payload':
        return Buffer.concat([l.data, inner]);
    }
  }

  /** Internet checksum of an L4 segment with the IPv4 or IPv6 pseudo-header. */
  private l4Checksum(i: number, proto: number, seg: Buffer): number {
    const ip = this.ipBefore(i);
    if (!ip) return checksum(seg);
    const pseudo = ip.v6 ? Buffer.alloc(40) : Buffer.alloc(12);
    ip.src.copy(pseudo, 0);
    ip.dst.copy(pseudo, ip.v6 ? 16 : 4);
    if (ip.v6) {
      pseudo.writeUInt32BE(seg.length, 32);
      pseudo[39] = proto;
    } else {
      pseudo[9] = proto;
      pseudo.writeUInt16BE(seg.length, 10);
    }
    return checksum(Buffer.concat([pseudo, seg]));
  }
}

/** Starts a frame: `eth().ipv4(...).tcp(...)`. */
export function eth(o: EthOptions = {}): Frame {
  return Frame.eth(o);
}

/** RFC 1071 Internet checksum (ones' complement of the ones' complement sum). */
export function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += b[b.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

const FLAG_BITS: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, A: 0x10, U: 0x20 };
function tcpFlags(f: TcpFlags): number {
  if (typeof f === 'number') return f;
  let v = 0;
  for (const c of f.toUpperCase()) {
    const bit = FLAG_BITS[c];
    if (bit === undefined) throw new TypeError(`unknown TCP flag ${c} in ${f}`);
    v |= bit;
  }
  return v;
}

/** Options area of hop-by-hop/destination headers: given bytes, PadN-padded to 6 + 8n. */
function optionsBody(options?: Buffer): Buffer {
  const opts = options ?? Buffer.alloc(0);
  const total = Math.max(6, Math.ceil((opts.length + 2) / 8) * 8 - 2);
  const pad = total - opts.length;
  const padding = pad === 0 ? Buffer.alloc(0) : pad === 1 ? Buffer.from([0]) : Buffer.concat([Buffer.from([1, pad - 2]), Buffer.alloc(pad - 2)]);
  return Buffer.concat([opts, padding]);
}

function macBytes(mac: string): Buffer {
  const b = Buffer.from(mac.split(':').map((h) => parseInt(h, 16)));
  if (b.length !== 6) throw new TypeError(`not a MAC address: ${mac}`);
  return b;
}

export function ipv4Bytes(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new TypeError(`not an IPv4 address: ${ip}`);
  return Buffer.from(parts);
}

export function ipv6Bytes(ip: string): Buffer {
  const [head, tail, extra] = ip.split('::');
  if (extra !== undefined) throw new TypeError(`not an IPv6 address: ${ip}`);
  const groups = (s: string | undefined) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  if (all.length !== 8 || all.some((g) => !/^[0-9a-f]{1,4}$/i.test(g))) throw new TypeError(`not an IPv6 address: ${ip}`);
  const b = Buffer.alloc(16);
  all.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}
