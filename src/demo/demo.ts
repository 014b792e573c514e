/**
 * `make demo`: a two-node lab, the example policies in policies/, real traffic before
 * and after, the allowed and denied pairs printed side by side; then the shop's api
 * Service: new connections spread over its two pods (one per node), and a client the
 * policies deny is denied through the service too (policy judges the backend after
 * translation, with the client's own identity). Runs the CLI exactly as a user would
 * and shows each command. Exits 0 when everything behaved as the policies say (the
 * expectation is written out below), 1 otherwise; the lab is torn down either way.
 */
import { spawnSync } from 'node:child_process';
import { relative } from 'node:path';
import { CLI_ENTRY, PACKAGE_ROOT } from '../paths.js';
import { formatTable } from '../cli/table.js';
import { probeTargets, type ProbeRow } from '../lab/probe.js';
import { readLabState } from '../lab/state.js';

const LAB = 'labs/demo.yaml';
/** Every file in it, as `apply -f DIR` reads them (kubectl's way). */
const POLICIES = 'policies/';

type Probe = ProbeRow;

const API_PODS = ['shop/api', 'shop/api-2'];

/** What policies/ allow, restated by hand: shop is isolated both ways, tools is not. */
function expected(p: Pick<Probe, 'from' | 'to' | 'port' | 'protocol'>): boolean {
  const from = p.from;
  if (from === p.to) return true; // a pod reaches itself over loopback, which no policy sees
  // What shop's pods may send (shop-egress.yaml): web to api on TCP 8000-8999 and to the monitor's metrics
  // port (its address is in the ipBlock), api to db on TCP 5432 (postgres), db nothing.
  const webMay = (API_PODS.includes(p.to) && p.protocol === 'TCP' && p.port >= 8000 && p.port <= 8999) || (p.to === 'tools/monitor' && p.protocol === 'TCP' && p.port === 9100);
  if (from === 'shop/web' && !webMay) return false;
  if (API_PODS.includes(from) && !(p.to === 'shop/db' && p.protocol === 'TCP' && p.port === 5432)) return false;
  if (from === 'shop/db') return false;
  // What they admit (shop-allow*.yaml, shop-default-deny.yaml).
  if (API_PODS.includes(p.to)) return from === 'tools/monitor' || (from === 'shop/web' && p.protocol === 'TCP' && p.port === 8080);
  switch (p.to) {
    case 'shop/web':
      return p.protocol === 'TCP' && p.port === 80;
    case 'shop/db':
      return from === 'tools/monitor' || (API_PODS.includes(from) && p.protocol === 'TCP' && p.port === 5432);
    default:
      return true;
  }
}

/** The api Service from two clients: `count` new connections each, which pod answered. */
async function throughService(): Promise<number> {
  const services = JSON.parse(tcplane(['get', 'services', '-o', 'json'], { capture: true })) as {
    namespace: string;
    name: string;
    clusterIPs: string[];
    backends: unknown[];
  }[];
  for (const s of services) console.log(`${s.namespace}/${s.name}: clusterIPs ${s.clusterIPs.join(', ')}, ${s.backends.length} backends`);
  tcplane(['get', 'services', '-o', 'wide']);
  const ip = services.find((s) => s.name === 'api')!.clusterIPs[0]!;
  const state = await readLabState();
  const count = 20;
  let failures = 0;
  console.log(bold(`\n${count} new connections to the api Service (${ip}:80) from each client, one WHOAMI answer each:\n`));
  const rows: string[][] = [];
  for (const from of ['shop/web', 'shop/db']) {
    const targets = Array.from({ length: count }, () => ({ to: 'svc:shop/api', ip, port: 80, protocol: 'TCP' as const, whoami: true }));
    const results = await probeTargets(state, from, targets, 700);
    const by = new Map<string, number>();
    for (const r of results) by.set(r.backend ?? `not connected (${r.reason})`, (by.get(r.backend ?? `not connected (${r.reason})`) ?? 0) + 1);
    const allowed = expected({ from, to: 'shop/api', port: 8080, protocol: 'TCP' });
    // Allowed: both pods answer (a fair spread misses one with probability 2 × 2^-20). Denied: none does.
    const ok = allowed ? API_PODS.every((b) => (by.get(b) ?? 0) > 0) && results.every((r) => r.connected) : results.every((r) => !r.connected);
    if (!ok) failures++;
    for (const [b, n] of [...by].sort()) rows.push([from, b, String(n), allowed ? 'allowed' : 'denied by shop/api-from-web and shop/db-no-egress', ok ? '' : 'NOT AS EXPECTED']);
  }
  console.log(formatTable(['FROM', 'ANSWERED BY', 'CONNECTIONS', 'POLICY', ''], rows));
  return failures;
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

/** Every verdict explained: the drops with the policy that decided, and each rule's counts. */
function explained(): number {
  const drops = tcplane(['observe', '--verdict', 'dropped', '--last', '6'], { capture: true });
  process.stdout.write(drops);
  tcplane(['get', 'policies', '-o', 'wide']);
  if (drops.includes(' by ')) return 0;
  console.error('demo: observe reported no drop naming the policy that decided it');
  return 1;
}

const key = (p: Probe) => `${p.from} ${p.to} ${p.port}/${p.protocol}`;

async function main(): Promise<number> {
  let failures = 0;
  try {
    tcplane(['lab', 'up', '-f', LAB]);
    const before = probe('no policy');
    tcplane(['apply', '-f', POLICIES, '--wait']);
    tcplane(['get', 'endpoints']);
    const after = new Map(probe('with policies').map((p) => [key(p), p]));
    failures += await throughService();
    failures += explained();
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

process.exitCode = await main();
