import { describe, expect, it } from 'vitest';
import { probeReason } from '../../src/lab/control.js';
import { WHOAMI_MAX_LINE, formatWhoami, hostPort, isWhoamiDatagram, parseWhoami, splitWhoami, type FirstLine } from '../../src/lab/whoami.js';

const b = (s: string) => Buffer.from(s, 'latin1');
const split = (s: string): FirstLine | { kind: 'whoami'; rest: string } => {
  const r = splitWhoami(b(s));
  return r.kind === 'whoami' ? { kind: 'whoami', rest: r.rest.toString('latin1') } : r;
};

/** Feeds `chunks` one at a time, as a server's data events would, until the first line decides. */
function feed(chunks: string[]): { kind: string; rest?: string; after: number } {
  let head = Buffer.alloc(0);
  for (let i = 0; i < chunks.length; i++) {
    head = Buffer.concat([head, b(chunks[i])]);
    const r = splitWhoami(head);
    if (r.kind === 'echo') return { kind: 'echo', after: i + 1 };
    if (r.kind === 'whoami') return { kind: 'whoami', rest: r.rest.toString('latin1'), after: i + 1 };
  }
  return { kind: 'more', after: chunks.length };
}

describe('lab whoami - the first line of a TCP connection', () => {
  it('lab whoami - a WHOAMI line is a request; the bytes after its newline are to be echoed', () => {
    expect(split('WHOAMI\n')).toEqual({ kind: 'whoami', rest: '' });
    expect(split('WHOAMI\nhello')).toEqual({ kind: 'whoami', rest: 'hello' });
    expect(split('WHOAMI\r\n')).toEqual({ kind: 'whoami', rest: '' }); // the request is the line through its \n
    expect(split('WHOAMI please\nWHOAMI\n')).toEqual({ kind: 'whoami', rest: 'WHOAMI\n' }); // only the first line is a request
  });

  it('lab whoami - a prefix of a request waits for more bytes', () => {
    for (const s of ['', 'W', 'WHO', 'WHOAM', 'WHOAMI', 'WHOAMI and more without a newline']) expect(split(s)).toEqual({ kind: 'more' });
  });

  it('lab whoami - anything that is not a prefix of WHOAMI echoes from the first byte', () => {
    for (const s of ['x', 'WHOX', 'whoami\n', ' WHOAMI\n', 'WHOAREYOU\n', '\n', 'GET / HTTP/1.1\r\n']) expect(split(s)).toEqual({ kind: 'echo' });
  });

  it('lab whoami - partial reads: WHO, then AMI and the rest of the line', () => {
    expect(feed(['WHO', 'AMI', '\nafter'])).toEqual({ kind: 'whoami', rest: 'after', after: 3 });
    expect(feed(['W', 'H', 'O', 'A', 'M', 'I', '\n'])).toEqual({ kind: 'whoami', rest: '', after: 7 });
    expect(feed(['WHO', 'ARE YOU'])).toEqual({ kind: 'echo', after: 2 });
    expect(feed(['WHO'])).toEqual({ kind: 'more', after: 1 }); // the server echoes it if the stream ends here
  });

  it('lab whoami - a first line that never ends is not a request (bounded buffering)', () => {
    // A line of WHOAMI_MAX_LINE bytes, its newline included, is the longest request.
    expect(split(`WHOAMI${'x'.repeat(WHOAMI_MAX_LINE - 7)}\n`)).toEqual({ kind: 'whoami', rest: '' });
    expect(split(`WHOAMI${'x'.repeat(WHOAMI_MAX_LINE - 6)}\n`)).toEqual({ kind: 'echo' });
    expect(split(`WHOAMI${'x'.repeat(WHOAMI_MAX_LINE - 7)}`)).toEqual({ kind: 'more' });
    expect(split(`WHOAMI${'x'.repeat(WHOAMI_MAX_LINE - 6)}`)).toEqual({ kind: 'echo' });
  });
});

describe('lab whoami - datagrams and answers', () => {
  it('lab whoami - a datagram beginning with WHOAMI is a request, with or without a newline', () => {
    for (const s of ['WHOAMI', 'WHOAMI\n', 'WHOAMI?']) expect(isWhoamiDatagram(b(s))).toBe(true);
    for (const s of ['', 'WHOAM', 'whoami', 'xWHOAMI']) expect(isWhoamiDatagram(b(s))).toBe(false);
  });

  it('lab whoami - the answer is one JSON line with the documented keys, in order', () => {
    const line = formatWhoami({ pod: 'x/a', local: '10.244.1.10:80', peer: '10.244.2.11:40123', protocol: 'TCP' });
    expect(line).toBe('{"pod":"x/a","local":"10.244.1.10:80","peer":"10.244.2.11:40123","protocol":"TCP"}\n');
    expect(parseWhoami(line)).toEqual({ pod: 'x/a', local: '10.244.1.10:80', peer: '10.244.2.11:40123', protocol: 'TCP' });
  });

  it('lab whoami - what is not an answer does not parse', () => {
    for (const s of ['', 'WHOAMI', '{}', '{"pod":"x/a","local":"a","peer":"b","protocol":"SCTP"}', '{"pod":"x/a","local":"a","peer":"b","protocol":"TCP","extra":1}', 'null']) {
      expect(parseWhoami(s)).toBeUndefined();
    }
  });

  it('lab whoami - addresses are host:port, IPv6 in brackets', () => {
    expect(hostPort('10.244.1.10', 80)).toBe('10.244.1.10:80');
    expect(hostPort('fd00:10:244:1::a', 80)).toBe('[fd00:10:244:1::a]:80');
  });
});

describe('lab probe - reasons', () => {
  it('lab probe - socket errors become the documented reasons; others keep their code', () => {
    const e = (code: string) => Object.assign(new Error(code), { code });
    expect(probeReason(e('ECONNREFUSED'))).toBe('refused');
    expect(probeReason(e('ECONNRESET'))).toBe('reset');
    expect(probeReason(e('ETIMEDOUT'))).toBe('timeout');
    expect(probeReason(e('ENETUNREACH'))).toBe('unreachable');
    expect(probeReason(e('EHOSTUNREACH'))).toBe('unreachable');
    expect(probeReason(e('EPERM'))).toBe('denied');
    expect(probeReason(e('EADDRNOTAVAIL'))).toBe('EADDRNOTAVAIL');
  });
});
