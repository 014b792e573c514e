/**
 * The policy compiler at scale: how many policy entries the resolver writes for one
 * node, and how long compiling takes, in two generated clusters:
 *
 *   policies   1,000 NetworkPolicies over 1,000 local endpoints (10 namespaces × 100
 *              pods, 20 apps × 5 tiers): each selects one app of its namespace and has an
 *              ingress rule (one app of the namespace, one port), an ingress rule from
 *              another namespace's tier (a port range), and an egress rule (one app, TCP
 *              and UDP) that counts in the half of them that isolate egress too
 *   rules      10,000 rules: 10 policies of 1,000 rules each over the 100 pods of one
 *              namespace, every rule a peer app and a port or range of its own
 *   tiers      `policies` plus 100 cluster policies of 10 rules (ClusterNetworkPolicy
 *              Admin and Baseline, AdminNetworkPolicy; Accept, Deny and Pass; subjects
 *              by namespace or pods; peers by namespace, pods or networks; ports, ranges)
 *
 * Beside each, the baseline of the same input: the entries one would write without
 * resolving (one per endpoint, rule, peer identity and port block, as the allow-only
 * compiler before it did, less exact duplicates), and the ratio; for `tiers`, the
 * NetworkPolicies alone (`policies`), compiled in the same run. Times are the median
 * of 5 compiles in this process (min–max).
 *
 * Knobs: TCPLANE_BENCH_ROUNDS (5). Writes bench/results/policy-resolver-*.json.
 */
import { compile, type DesiredInput, type LocalEndpoint } from '../src/policy/compile.js';
import type { IdentityLabels } from '../src/identity/labels.js';
import { portBlocks } from '../src/datapath/policy-keys.js';
import type { ClusterNetworkPolicy, ClusterPeer, ClusterRule, NetworkPolicy, PolicyDocument, PolicyPort } from '../src/policy/types.js';
import { num, spread, fmt } from './lab-bench.js';
import { machine, saveResult } from './machine.js';

const ROUNDS = num('TCPLANE_BENCH_ROUNDS', 5);
const sel = (matchLabels: Record<string, string>) => ({ matchLabels, matchExpressions: [] });

function netpol(namespace: string, name: string, spec: Partial<NetworkPolicy>): NetworkPolicy {
  return {
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    namespace,
    name,
    podSelector: sel({}),
    policyTypes: ['Ingress'],
    ingress: [],
    egress: [],
    source: { file: 'bench', line: 1 },
    ...spec,
  };
}

/** `namespaces` × `perNamespace` local pods, app i % apps, tier i % tiers; identities by labels. */
function cluster(namespaces: number, perNamespace: number, apps: number, tiers: number): Omit<DesiredInput, 'policies'> {
  const identities = new Map<number, IdentityLabels>();
  const byLabels = new Map<string, number>();
  const localEndpoints: LocalEndpoint[] = [];
  for (let n = 0; n < namespaces; n++) {
    const ns = `ns${n}`;
    for (let i = 0; i < perNamespace; i++) {
      const pod = { app: `app${i % apps}`, tier: `tier${i % tiers}` };
      const k = `${ns}/${pod.app}/${pod.tier}`;
      let id = byLabels.get(k);
      if (id === undefined) {
        id = 256 + byLabels.size;
        byLabels.set(k, id);
        identities.set(id, { namespace: ns, pod, namespaceLabels: { 'kubernetes.io/metadata.name': ns, team: `team${n % 3}` } });
      }
      const ip = `10.${100 + n}.${i >> 8}.${i & 255}`;
      localEndpoints.push({ key: `${ns}/p${i}`, namespace: ns, name: `p${i}`, ips: [ip], id: 1000 + localEndpoints.length, ifindex: 1000 + localEndpoints.length, identity: id, labels: pod, ports: [] });
    }
  }
  return {
    node: 'n1',
    localEndpoints,
    clusterEndpoints: localEndpoints.map((e) => ({ ips: e.ips, identity: e.identity })),
    identities,
    nodes: [],
    hostAddresses: ['10.250.0.10'],
  };
}

function manyPolicies(): DesiredInput {
  const base = cluster(10, 100, 20, 5);
  const policies: NetworkPolicy[] = [];
  for (let i = 0; i < 1000; i++) {
    const ns = `ns${i % 10}`;
    const app = `app${Math.floor(i / 10) % 20}`;
    policies.push(
      netpol(ns, `p${i}`, {
        podSelector: sel({ app }),
        policyTypes: i % 2 === 0 ? ['Ingress', 'Egress'] : ['Ingress'],
        ingress: [
          { from: [{ podSelector: sel({ app: `app${(i * 7) % 20}` }) }], ports: [{ protocol: 'TCP', port: 8000 + (i % 50) }] },
          { from: [{ namespaceSelector: sel({ team: `team${i % 3}` }), podSelector: sel({ tier: `tier${i % 5}` }) }], ports: [{ protocol: 'TCP', port: 9000, endPort: 9000 + (i % 200) }] },
        ],
        egress: [{ to: [{ podSelector: sel({ app: `app${(i * 3) % 20}` }) }], ports: [{ protocol: 'TCP', port: 5432 }, { protocol: 'UDP', port: 53 }] }],
      }),
    );
  }
  // Egress rules count only in the policies that isolate egress (policyTypes), as in Kubernetes.
  return { ...base, policies };
}

function manyRules(): DesiredInput {
  const base = cluster(1, 100, 20, 5);
  const policies = Array.from({ length: 10 }, (_, p) =>
    netpol('ns0', `rules${p}`, {
      podSelector: sel({ tier: `tier${p % 5}` }),
      ingress: Array.from({ length: 1000 }, (_, r) => {
        const port = 1024 + ((p * 1000 + r) * 37) % 60000;
        const ports: PolicyPort[] = r % 4 === 0 ? [{ protocol: 'TCP', port, endPort: port + (r % 97) }] : [{ protocol: r % 3 === 0 ? 'UDP' : 'TCP', port }];
        return { from: [{ podSelector: sel({ app: `app${r % 20}` }) }], ports };
      }),
    }),
  );
  return { ...base, policies };
}

/** `policies`' NetworkPolicies with 100 cluster policies of 10 rules over the same cluster. */
function tiers(): DesiredInput {
  const base = manyPolicies();
  const actions = ['Accept', 'Deny', 'Pass'] as const;
  const cluster: ClusterNetworkPolicy[] = Array.from({ length: 100 }, (_, i) => {
    const admin = i % 4 !== 3;
    const peer = (r: number): ClusterPeer =>
      r % 5 === 0
        ? { networks: [`10.${100 + (r % 10)}.0.0/24`] }
        : r % 2 === 0
          ? { namespaces: sel({ team: `team${r % 3}` }) }
          : { pods: { namespaceSelector: sel({}), podSelector: sel({ app: `app${(i + r) % 20}` }) } };
    const rule = (r: number, egress: boolean): ClusterRule => ({
      name: `r${r}`,
      action: admin ? actions[(i + r) % 3]! : actions[(i + r) % 2]!,
      peers: [egress ? peer(r) : r % 5 === 0 ? { namespaces: sel({}) } : peer(r)],
      ...(r % 3 === 0 ? {} : { ports: [{ protocol: 'TCP' as const, port: 8000 + r, ...(r % 2 ? { endPort: 8100 + r } : {}) }] }),
    });
    return {
      kind: i % 2 ? 'AdminNetworkPolicy' : 'ClusterNetworkPolicy',
      apiVersion: 'policy.networking.k8s.io/v1alpha2',
      name: `c${i}`,
      tier: i % 2 ? 'Admin' : admin ? 'Admin' : 'Baseline',
      priority: i % 50,
      subject: i % 3 === 0 ? { namespaces: sel({ team: `team${i % 3}` }) } : { pods: { namespaceSelector: sel({}), podSelector: sel({ tier: `tier${i % 5}` }) } },
      ingress: Array.from({ length: 6 }, (_, r) => rule(r, false)),
      egress: Array.from({ length: 4 }, (_, r) => rule(r, true)),
      source: { file: 'bench', line: 1 },
    };
  });
  return { ...base, policies: [...base.policies, ...cluster] };
}

const networkPolicies = (ps: readonly PolicyDocument[]) => ps.filter((p): p is NetworkPolicy => p.kind === 'NetworkPolicy');

/** The unresolved baseline: one entry per endpoint, rule, peer identity and port block, without exact duplicates. */
function unresolvedEntries(input: DesiredInput): number {
  const keys = new Set<string>();
  for (const ep of input.localEndpoints) {
    for (const p of networkPolicies(input.policies)) {
      if (p.namespace !== ep.namespace || !Object.entries(p.podSelector.matchLabels).every(([k, v]) => ep.labels[k] === v)) continue;
      for (const [dir, rules] of [
        ['in', p.policyTypes.includes('Ingress') ? p.ingress.map((r) => ({ peers: r.from, ports: r.ports })) : []],
        ['out', p.policyTypes.includes('Egress') ? p.egress.map((r) => ({ peers: r.to, ports: r.ports })) : []],
      ] as const) {
        for (const rule of rules) {
          const ids = [...input.identities].filter(([, l]) =>
            (rule.peers ?? []).some((peer) => {
              const nsOk = peer.namespaceSelector ? Object.entries(peer.namespaceSelector.matchLabels).every(([k, v]) => l.namespaceLabels[k] === v) : l.namespace === p.namespace;
              return nsOk && Object.entries(peer.podSelector?.matchLabels ?? {}).every(([k, v]) => l.pod[k] === v);
            }),
          );
          for (const [id] of ids)
            for (const port of rule.ports ?? []) {
              const n = typeof port.port === 'number' ? portBlocks(port.port, port.endPort ?? port.port).length : 1;
              for (let b = 0; b < n; b++) keys.add(`${ep.id}/${dir}/${id}/${port.protocol}/${String(port.port)}/${b}`);
            }
        }
      }
    }
  }
  return keys.size;
}

function measure(name: string, input: DesiredInput, baseline?: { name: string; entries: number }) {
  const ms: number[] = [];
  let entries = 0;
  for (let r = 0; r < ROUNDS; r++) {
    const t = performance.now();
    entries = compile(input).policy.length;
    ms.push(performance.now() - t);
  }
  // For tiers: what the NetworkPolicies alone give (the cluster policies' cost on top).
  const unresolved = baseline ? baseline.entries : unresolvedEntries(input);
  const rules = input.policies.reduce((n, p) => n + p.ingress.length + p.egress.length, 0);
  const out = { name, policies: input.policies.length, rules, endpoints: input.localEndpoints.length, identities: input.identities.size, entries, unresolved, ratio: entries / unresolved, compileMs: spread(ms) };
  const against = baseline ? `${baseline.name} alone ${unresolved}` : `unresolved ${unresolved}`;
  console.log(`${name.padEnd(9)} ${String(out.policies).padStart(5)} policies ${String(rules).padStart(6)} rules ${out.endpoints} endpoints: ${entries} entries (${against}, ratio ${out.ratio.toFixed(2)}), compile ${fmt(out.compileMs)} ms`);
  return out;
}

function main(): void {
  const m = machine();
  console.log(`machine: ${m.cpu}, ${m.cores} cores, Linux ${m.kernel}, Node ${m.node}, commit ${m.commit}`);
  const policies = measure('policies', manyPolicies());
  const results = [policies, measure('rules', manyRules()), measure('tiers', tiers(), { name: 'policies', entries: policies.entries })];
  console.log(`\nwritten: ${saveResult('policy-resolver', { machine: m, rounds: ROUNDS, results })}`);
}

main();
