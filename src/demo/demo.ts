/**
 * `make demo`: a two-node lab, the example policies in policies/, real traffic before
 * and after, the allowed and denied pairs printed side by side. Runs the CLI exactly
 * as a user would and shows each command. Exits 0 when every pair behaved as the
 * policies say (the expectation is written out below), 1 otherwise; the lab is torn
 * down either way.
 */
import { spawnSync } from 'node:child_process';
import { relative } from 'node:path';
import { CLI_ENTRY, PACKAGE_ROOT } from '../paths.js';
import { formatTable } from '../cli/table.js';
import type { ProbeRow } from '../lab/probe.js';

const LAB = 'labs/demo.yaml';
/** Every file in it, as `apply -f DIR` reads them (kubectl's way). */
const POLICIES = 'policies/';

type Probe = ProbeRow;

/** What policies/ allow, restated by hand: shop is isolated, tools is not. */
function expected(p: Probe): boolean {
  const from = p.from;
  if (from === p.to) return true; // a pod reaches itself over loopback, which no policy sees
  switch (p.to) {
    case 'shop/web':
      return p.protocol === 'TCP' && p.port === 80;
    case 'shop/api':
      return from === 'tools/monitor' || (from === 'shop/web' && p.protocol === 'TCP' && p.port === 8080);
    case 'shop/db':
      return from === 'tools/monitor' || (from === 'shop/api' && p.protocol === 'TCP' && p.port === 5432);
    default:
      return true;
  }
}

const bold = (s: string) => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);

function tcplane(args: string[], opts: { capture?: boolean } = {}): string {
  console.log(bold(`\n$ tcplane ${args.join(' ')}`));
  const r = spawnSync(process.execPath, [relative(PACKAGE_ROOT, CLI_ENTRY), ...args], {
    cwd: PACKAGE_ROOT,
    stdio: ['ignore', opts.capture ? 'pipe' : 'inherit', 'inherit'],
    encoding: 'utf8',
    timeout: 180_000,
  });
  if (r.status !== 0) throw new Error(`tcplane ${args[0]} exited with ${r.status ?? r.signal}`);
  return r.stdout ?? '';
}

function probe(label: string): Probe[] {
  const out = JSON.parse(tcplane(['lab', 'probe', '--json'], { capture: true })) as Probe[];
  const ok = out.filter((p) => p.connected).length;
  console.log(`${label}: ${ok} of ${out.length} probes connected`);
  return out;
}

const key = (p: Probe) => `${p.from} ${p.to} ${p.port}/${p.protocol}`;

function main(): number {
  let failures = 0;
  try {
    tcplane(['lab', 'up', '-f', LAB]);
    const before = probe('no policy');
    tcplane(['apply', '-f', POLICIES, '--wait']);
    tcplane(['get', 'policies']);
    tcplane(['get', 'endpoints']);
    const after = new Map(probe('with policies').map((p) => [key(p), p]));
    tcplane(['delete', '-f', POLICIES, '--wait']);
    const deleted = new Map(probe('policies deleted').map((p) => [key(p), p]));

    const rows = before.map((b) => {
      const a = after.get(key(b));
      const d = deleted.get(key(b));
      const want = expected(b);
      const ok = b.connected && a?.connected === want && d?.connected === true;
      if (!ok) failures++;
      const mark = (c: boolean | undefined) => (c === undefined ? '?' : c ? 'allowed' : 'denied');
      return [b.from, b.to, `${b.port}/${b.protocol}`, mark(b.connected), mark(a?.connected), mark(d?.connected), ok ? '' : `expected ${mark(want)}`];
    });
    console.log(bold('\nWhat each pod could reach (new connections, TCP handshake + echo, UDP echo):\n'));
    console.log(formatTable(['FROM', 'TO', 'PORT', 'NO POLICY', 'WITH POLICIES', 'AFTER DELETE', ''], rows));
    const allowed = rows.filter((r) => r[4] === 'allowed').length;
    console.log(`\nwith policies: ${allowed} allowed, ${rows.length - allowed} denied; ${failures === 0 ? 'all as the policies say' : `${failures} not as expected`}`);
  } catch (err) {
    console.error(`demo: ${(err as Error).message}`);
    failures++;
  } finally {
    try {
      tcplane(['lab', 'down']);
    } catch (err) {
      console.error(`demo: ${(err as Error).message}`);
      failures++;
    }
  }
  return failures === 0 ? 0 : 1;
}

process.exitCode = main();
