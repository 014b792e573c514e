/**
 * `tcplane get policies|services|endpoints|nodes [-o wide|json]`: what the cluster store
 * holds, as kubectl shows it. Services come with their backends, computed from the
 * selector over registered pods exactly as the agents compute them.
 */
import type { Command } from 'commander';
import { RESERVED_IDENTITY_NAMES } from '../datapath/constants.js';
import type { ClusterSelector, LabelSelector, PolicyDocument } from '../policy/types.js';
import { serviceBackends, serviceFamilies, type Backend } from '../services/backends.js';
import { storedServices } from '../services/stored.js';
import type { Service } from '../services/types.js';
import { endpointRecord, identityRecord, nodePodCIDRs, nodeRecord, podRecord, policyRecord, statusRecord } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { COUNTERS_SUBJECT, ruleCounterRow } from '../store/counters.js';
import { gather } from '../store/gather.js';
import { displayName } from './manifest.js';
import { withStore } from './store.js';
import { printTable } from './table.js';

/** Every node's per-rule counters, summed across nodes, in policy then rule order. */
async function clusterRuleCounters(store: Store) {
  const nodes = (await store.list('nodes', nodeRecord)).entries.keys();
  const { replies, silent } = await gather(store.nc, COUNTERS_SUBJECT, {}, nodes, 3000);
  const sums = new Map<string, { kind: string; namespace: string | null; name: string; rule: string | null; packets: bigint; bytes: bigint }>();
  for (const m of replies) {
    for (const raw of Array.isArray(m.rules) ? m.rules : []) {
      const r = ruleCounterRow.safeParse(raw);
      if (!r.success) continue;
      const k = JSON.stringify([r.data.kind, r.data.namespace, r.data.name, r.data.rule]);
      const t = sums.get(k) ?? { ...r.data, packets: 0n, bytes: 0n };
      sums.set(k, { ...t, packets: t.packets + BigInt(r.data.packets), bytes: t.bytes + BigInt(r.data.bytes) });
    }
  }
  const rows = [...sums.values()].sort((a, b) => `${a.kind}/${a.namespace}/${a.name}/${a.rule}`.localeCompare(`${b.kind}/${b.namespace}/${b.name}/${b.rule}`));
  return { rows, silent };
}

function selectorText(labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}=${v}`);
  return parts.length ? parts.join(',') : '<all>';
}

/** A selector with its expressions: `app=web,tier notin (a,b),env` (Kubernetes' selector syntax). */
function fullSelectorText(s: LabelSelector): string {
  const exprs = s.matchExpressions.map((e) =>
    e.operator === 'Exists' ? e.key : e.operator === 'DoesNotExist' ? `!${e.key}` : `${e.key} ${e.operator.toLowerCase()} (${e.values.join(',')})`,
  );
  const parts = [...Object.entries(s.matchLabels).map(([k, v]) => `${k}=${v}`), ...exprs];
  return parts.length ? parts.join(',') : '<all>';
}

/** A cluster policy's subject as a table shows it: `ns:<selector>` or `ns:<selector> pod:<selector>`. */
function subjectText(s: ClusterSelector): string {
  if (s.namespaces) return `ns:${fullSelectorText(s.namespaces)}`;
  return `ns:${fullSelectorText(s.pods!.namespaceSelector)} pod:${fullSelectorText(s.pods!.podSelector)}`;
}

/** One service of `get services -o json` (DESIGN.md): absent values are null. */
export interface ServiceJson {
  namespace: string;
  name: string;
  type: Service['type'];
  clusterIPs: string[];
  ipFamilies: Service['ipFamilies'];
  ipFamilyPolicy: NonNullable<Service['ipFamilyPolicy']>;
  externalIPs: string[];
  loadBalancerIngress: string[];
  sessionAffinity: Service['sessionAffinity'];
  sessionAffinityTimeoutSeconds: number | null;
  externalTrafficPolicy: Service['externalTrafficPolicy'] | null;
  internalTrafficPolicy: Service['internalTrafficPolicy'];
  healthCheckNodePort: number | null;
  ports: { name: string | null; port: number; protocol: string; targetPort: number | string; nodePort: number | null }[];
  backends: { pod: string; node: string; ip: string; port: number; protocol: string; servicePort: number; state: 'ready' | 'terminating' }[];
}

/** A service as `get services -o json` shows it; unready backends are left out. */
export function serviceJson(s: Service, backends: Backend[][]): ServiceJson {
  // Kubernetes sets externalTrafficPolicy only where external traffic exists.
  const external = s.type !== 'ClusterIP' || s.externalIPs.length > 0;
  return {
    namespace: s.namespace,
    name: s.name,
    type: s.type,
    clusterIPs: s.clusterIPs,
    ipFamilies: serviceFamilies(s),
    ipFamilyPolicy: s.ipFamilyPolicy ?? 'SingleStack',
    externalIPs: s.externalIPs,
    loadBalancerIngress: s.loadBalancerIngress,
    sessionAffinity: s.sessionAffinity,
    sessionAffinityTimeoutSeconds: s.sessionAffinity === 'ClientIP' ? s.sessionAffinityTimeoutSeconds : null,
    externalTrafficPolicy: external ? s.externalTrafficPolicy : null,
    internalTrafficPolicy: s.internalTrafficPolicy,
    healthCheckNodePort: s.healthCheckNodePort ?? null,
    ports: s.ports.map((p) => ({ name: p.name ?? null, port: p.port, protocol: p.protocol, targetPort: p.targetPort, nodePort: p.nodePort ?? null })),
    backends: backends
      .flat()
      .filter((b): b is Backend & { state: 'ready' | 'terminating' } => b.state !== 'unready')
      .map(({ pod, node, ip, port, protocol, servicePort, state }) => ({ pod, node, ip, port, protocol, servicePort, state })),
  };
}

/** Stored services (valid ones) and every pod, for `get services`. */
async function readServices(store: Store): Promise<{ services: Service[]; invalid: { key: string; error: string }[]; json: ServiceJson[] }> {
  const { services, invalid } = await storedServices(store);
  const pods = [...(await store.list('pods', podRecord)).entries.values()].map((e) => e.value);
  return { services, invalid, json: services.map((s) => serviceJson(s, serviceBackends(s, pods))) };
}

const portsText = (s: ServiceJson) => s.ports.map((p) => `${p.port}${p.nodePort !== null ? `:${p.nodePort}` : ''}/${p.protocol}`).join(',');

function backendCounts(s: ServiceJson): string {
  const ready = s.backends.filter((b) => b.state === 'ready').length;
  const term = s.backends.length - ready;
  return `${ready} ready${term ? `, ${term} terminating` : ''}`;
}

export function registerGetCommands(program: Command): void {
  const get = program.command('get').description('list what the cluster store holds');
  const output = (cmd: Command) =>
    cmd.option('-o, --output <format>', 'table, wide or json', 'table').option('--nats <url>', 'NATS server (default: $TCPLANE_NATS, or the running lab)');

  output(get.command('policies').description('policies, as applied; -o wide adds packets and bytes per rule, from every node')).action(async (o) => {
    await withStore(o.nats, async (store) => {
      const { entries, invalid } = await store.list('policies', policyRecord);
      const rows = [...entries.values()].map((e) => e.value).sort((a, b) => displayName(a).localeCompare(displayName(b)));
      if (o.output === 'json') return console.log(JSON.stringify(rows.map((r) => r.spec), null, 2));
      const counted = o.output === 'wide' ? await clusterRuleCounters(store) : null;
      const perPolicy = new Map<string, { packets: bigint; bytes: bigint }>();
      for (const c of counted?.rows ?? []) {
        const k = `${c.kind}/${c.namespace ?? ''}/${c.name}`;
        const t = perPolicy.get(k) ?? { packets: 0n, bytes: 0n };
        perPolicy.set(k, { packets: t.packets + c.packets, bytes: t.bytes + c.bytes });
      }
      printTable(
        ['KIND', 'NAMESPACE', 'NAME', 'TIER', 'PRIORITY', 'SELECTS', 'INGRESS RULES', 'EGRESS RULES', 'SOURCE', ...(counted ? ['PACKETS', 'BYTES'] : [])],
        rows.map((r) => {
          const d = r.spec as PolicyDocument;
          const [tier, priority, selects] =
            d.kind === 'NetworkPolicy'
              ? ['NetworkPolicy', '', selectorText(d.podSelector?.matchLabels ?? {})]
              : [d.tier, String(d.priority), subjectText(d.subject)];
          const total = perPolicy.get(`${d.kind}/${d.kind === 'NetworkPolicy' ? d.namespace : ''}/${d.name}`) ?? { packets: 0n, bytes: 0n };
          return [
            r.kind,
            r.namespace ?? '',
            r.name,
            tier,
            priority,
            selects,
            String(d.ingress?.length ?? 0),
            String(d.egress?.length ?? 0),
            r.source ? `${r.source.file}:${r.source.line}` : '',
            ...(counted ? [String(total.packets), String(total.bytes)] : []),
          ];
        }),
      );
      if (counted) {
        console.log('');
        printTable(
          ['KIND', 'NAMESPACE', 'POLICY', 'RULE', 'PACKETS', 'BYTES'],
          counted.rows.map((c) => [c.kind, c.namespace ?? '', c.name, c.rule ?? '', String(c.packets), String(c.bytes)]),
        );
        for (const n of counted.silent) console.error(`warning: node ${n} did not answer: its counts are missing`);
      }
      for (const i of invalid) console.error(`warning: policy ${i.key} in the store is invalid: ${i.error}`);
    });
  });

  output(get.command('services').description('services with their addresses, ports and backends')).action(async (o) => {
    await withStore(o.nats, async (store) => {
      const { json, invalid } = await readServices(store);
      if (o.output === 'json') console.log(JSON.stringify(json, null, 2));
      else {
        const head = ['NAMESPACE', 'NAME', 'TYPE', 'CLUSTER-IP', 'EXTERNAL-IP', 'PORT(S)', 'BACKENDS'];
        const wide = o.output === 'wide';
        printTable(
          wide ? [...head, 'AFFINITY', 'TRAFFIC-POLICY (INT/EXT)', 'BACKEND-LIST'] : head,
          json.map((s) => {
            const row = [s.namespace, s.name, s.type, s.clusterIPs.join(','), [...s.externalIPs, ...s.loadBalancerIngress].join(',') || '<none>', portsText(s), backendCounts(s)];
            if (!wide) return row;
            const list = s.backends.map((b) => `${b.pod}@${b.node}=${b.ip}:${b.port}/${b.protocol}(${b.state})`).join(' ') || '<none>';
            return [...row, s.sessionAffinity, `${s.internalTrafficPolicy}/${s.externalTrafficPolicy ?? '-'}`, list];
          }),
        );
      }
      for (const i of invalid) console.error(`warning: service ${i.key} in the store is invalid: ${i.error}`);
    });
  });

  output(get.command('endpoints').description('pods with their address, node and security identity')).action(async (o) => {
    await withStore(o.nats, async (store) => {
      const eps = [...(await store.list('endpoints', endpointRecord)).entries.values()].map((e) => e.value);
      const ids = (await store.list('identities', identityRecord)).entries;
      const labelsOf = (id: number) => ids.get(`id/${id}`)?.value.labels;
      eps.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
      if (o.output === 'json') return console.log(JSON.stringify(eps.map((e) => ({ ...e, labels: labelsOf(e.identity) })), null, 2));
      printTable(
        ['NAMESPACE', 'NAME', 'NODE', 'IP', 'IDENTITY', 'LABELS'],
        eps.map((e) => [e.namespace, e.name, e.node, e.ips.join(','), String(e.identity), RESERVED_IDENTITY_NAMES[e.identity] ?? selectorText(labelsOf(e.identity)?.pod ?? {})]),
      );
    });
  });

  output(get.command('nodes').description('nodes with a running agent and what they enforce')).action(async (o) => {
    await withStore(o.nats, async (store) => {
      const nodes = [...(await store.list('nodes', nodeRecord)).entries.values()].map((e) => e.value);
      const status = (await store.list('status', statusRecord)).entries;
      const policiesRev = await store.lastRevision('policies');
      const servicesRev = await store.lastRevision('services');
      nodes.sort((a, b) => a.name.localeCompare(b.name));
      if (o.output === 'json') {
        return console.log(JSON.stringify(nodes.map((n) => ({ ...n, podCIDRs: nodePodCIDRs(n), status: status.get(n.name)?.value })), null, 2));
      }
      printTable(
        ['NODE', 'ADDRESSES', 'POD-CIDR', 'ENDPOINTS', 'FAILED-CLOSED', 'POLICY-REVISION', 'SERVICE-REVISION', 'LAST-REPORT', 'LABELS'],
        nodes.map((n) => {
          const s = status.get(n.name)?.value;
          return [
            n.name,
            n.addresses.join(','),
            nodePodCIDRs(n).join(','),
            String(s?.endpoints ?? '-'),
            s?.failedClosed?.length ? s.failedClosed.map((f) => f.endpoint).join(',') : '-',
            s ? `${s.revisions.policies ?? 0}/${policiesRev}` : '-',
            s ? `${s.revisions.services ?? 0}/${servicesRev}` : '-',
            s?.updatedAt ?? 'never',
            selectorText(n.labels ?? {}),
          ];
        }),
      );
    });
  });
}
