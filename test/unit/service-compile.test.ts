// Backend selection and the service compiler: services and pods → frontends, Maglev
// tables and backends, as the agent writes them (no kernel needed).
import { describe, expect, it } from 'vitest';
import { addrString } from '../../src/datapath/addr.js';
import { PROTO, TP_BACKEND_STATE, TP_SVC_EMPTY, TP_SVC_ORIGIN } from '../../src/datapath/constants.js';
import { BackendIds, BackendIdsExhausted } from '../../src/services/backend-ids.js';
import { serviceBackends, usableBackends } from '../../src/services/backends.js';
import { compileServices, type ServiceCompileInput } from '../../src/services/compile.js';
import { healthChecks } from '../../src/services/health-checks.js';
import { parseServiceText } from '../../src/services/parse.js';
import type { Service } from '../../src/services/types.js';
import type { PodRecord } from '../../src/store/schema.js';

const pod = (name: string, node: string, ip: string, labels: Record<string, string>, extra: Partial<PodRecord> = {}): PodRecord => ({
  v: 1,
  namespace: 'x',
  name,
  node,
  labels,
  ips: [ip],
  ifname: `tp-${name}`,
  ports: [
    { name: 'http', port: 8080, protocol: 'TCP' },
    { name: 'dns', port: 5353, protocol: 'UDP' },
  ],
  ready: true,
  ...extra,
});

/** A stored service: parsed, then allocations filled in as `apply` would. */
function stored(yamlSpec: string, ids: number[], clusterIP = '10.96.0.10'): Service {
  const s = parseServiceText(`apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: x}\nspec:\n${yamlSpec}`, 't.yaml')[0]!;
  return {
    ...s,
    clusterIPs: s.clusterIPs.length ? s.clusterIPs : [clusterIP],
    ports: s.ports.map((p, i) => ({ ...p, id: ids[i], ...(p.nodePort === undefined && s.type !== 'ClusterIP' ? { nodePort: 30000 + i } : {}) })),
  };
}

const PODS = [
  pod('a', 'n1', '10.244.1.10', { app: 'web' }),
  pod('b', 'n2', '10.244.2.10', { app: 'web' }),
  pod('c', 'n2', '10.244.2.11', { app: 'web' }, { ports: [{ name: 'http', port: 9090, protocol: 'TCP' }] }), // no dns port
  pod('d', 'n3', '10.244.3.10', { app: 'other' }),
];

function input(services: Service[], pods = PODS, over: Partial<ServiceCompileInput> = {}): ServiceCompileInput {
  return { node: 'n1', services, pods, seed: 7, maxTableSize: 16381, backendIds: new BackendIds(), currentTableSize: () => undefined, ...over };
}

const WEB = '  selector: {app: web}\n';

describe('service backends', () => {
  it('service backends - the selector picks pods of the namespace; a named targetPort resolves per pod, by name and protocol', () => {
    const s = stored(`${WEB}  ports: [{name: http, port: 80, targetPort: http}, {name: dns, port: 53, protocol: UDP, targetPort: dns}]\n`, [1, 2]);
    const [http, dns] = serviceBackends(s, [...PODS, { ...PODS[0]!, namespace: 'y', name: 'a-elsewhere' }]);
    expect(http!.map((b) => `${b.pod} ${b.ip}:${b.port}`)).toEqual(['x/a 10.244.1.10:8080', 'x/b 10.244.2.10:8080', 'x/c 10.244.2.11:9090']);
    expect(dns!.map((b) => b.pod)).toEqual(['x/a', 'x/b']); // x/c declares no "dns"
    expect(http!.every((b) => b.servicePort === 80 && b.protocol === 'TCP')).toBe(true);
  });

  it('service backends - ready, terminating and unready states; publishNotReadyAddresses makes all ready', () => {
    const pods = [pod('a', 'n1', '10.244.1.10', { app: 'web' }, { ready: false }), pod('b', 'n1', '10.244.1.11', { app: 'web' }, { ready: false, terminating: true })];
    const s = stored(`${WEB}  ports: [{port: 80, targetPort: 8080}]\n`, [1]);
    expect(serviceBackends(s, pods)[0]!.map((b) => b.state)).toEqual(['unready', 'terminating']);
    expect(serviceBackends({ ...s, publishNotReadyAddresses: true }, pods)[0]!.map((b) => b.state)).toEqual(['ready', 'ready']);
  });

  it('service backends - new connections go to ready backends, or to terminating ones when none is ready', () => {
    const s = stored(`${WEB}  ports: [{port: 80, targetPort: 8080}]\n`, [1]);
    const mixed = serviceBackends(s, [pod('a', 'n1', '10.244.1.10', { app: 'web' }), pod('b', 'n1', '10.244.1.11', { app: 'web' }, { ready: false, terminating: true })])[0]!;
    expect(usableBackends(mixed).map((b) => b.pod)).toEqual(['x/a']);
    const allTerminating = mixed.map((b) => ({ ...b, state: 'terminating' as const }));
    expect(usableBackends(allTerminating).map((b) => b.pod)).toEqual(['x/a', 'x/b']);
    expect(usableBackends(mixed.map((b) => ({ ...b, state: 'unready' as const })))).toEqual([]);
  });
});

describe('service compile', () => {
  it('service compile - a ClusterIP frontend per port, its table holding every usable backend, backends with their state', () => {
    const s = stored(`${WEB}  ports: [{name: http, port: 80, targetPort: http}]\n`, [5]);
    const pods = [...PODS.slice(0, 2), pod('t', 'n1', '10.244.1.12', { app: 'web' }, { ready: false, terminating: true }), pod('u', 'n3', '10.244.3.11', { app: 'web' }, { ready: false })];
    const out = compileServices(input([s], pods));
    expect(out.frontends).toHaveLength(1);
    const fe = out.frontends[0]!;
    expect(fe.key).toMatchObject({ family: 4, protocol: PROTO.TCP, port: 80, origin: TP_SVC_ORIGIN.TP_SVC_FROM_POD, nodeport: 0 });
    expect(addrString(4, fe.key.addr)).toBe('10.96.0.10');
    expect(fe.value).toMatchObject({ service_id: 5, lut_size: 1021, affinity_timeout_s: 0 });
    expect(fe.value.lut_id).toBe(5 << 3);
    const byId = new Map(out.backends.map((b) => [b.key, b.value]));
    expect([...byId.values()].map((b) => [addrString(4, b.addr), b.port, b.state])).toEqual([
      ['10.244.1.10', 8080, TP_BACKEND_STATE.TP_BACKEND_ACTIVE],
      ['10.244.2.10', 8080, TP_BACKEND_STATE.TP_BACKEND_ACTIVE],
      ['10.244.1.12', 8080, TP_BACKEND_STATE.TP_BACKEND_TERMINATING],
      ['10.244.3.11', 8080, TP_BACKEND_STATE.TP_BACKEND_UNREADY],
    ]);
    // The table names only the two ready backends (the terminating one is skipped while they serve).
    const table = out.luts.get(fe.value.lut_id)!;
    expect(table).toHaveLength(1021);
    const inTable = new Set([...table].map((id) => addrString(4, byId.get(id)!.addr)));
    expect([...inTable].sort()).toEqual(['10.244.1.10', '10.244.2.10']);
  });

  it('service compile - NodePort, external and load balancer IPs: from pods they use every backend, from outside the external set', () => {
    const s = stored(`  type: LoadBalancer\n  externalTrafficPolicy: Local\n${WEB}  externalIPs: [10.250.1.20]\n  ports: [{port: 80, targetPort: 8080}]\nstatus: {loadBalancer: {ingress: [{ip: 10.250.1.10}]}}\n`, [9]);
    const out = compileServices(input([s])); // this node (n1) has one of three backends
    const fe = (origin: number, nodeport: number, addr?: string) =>
      out.frontends.find((f) => f.key.origin === origin && f.key.nodeport === nodeport && (addr === undefined || addrString(4, f.key.addr) === addr))!.value;
    const cluster = out.luts.get(fe(TP_SVC_ORIGIN.TP_SVC_FROM_POD, 1).lut_id)!;
    const local = out.luts.get(fe(TP_SVC_ORIGIN.TP_SVC_FROM_OUTSIDE, 1).lut_id)!;
    expect(new Set(cluster).size).toBe(3);
    expect(new Set(local).size).toBe(1);
    expect(fe(TP_SVC_ORIGIN.TP_SVC_FROM_POD, 0, '10.250.1.20').lut_id).toBe(fe(TP_SVC_ORIGIN.TP_SVC_FROM_POD, 1).lut_id);
    expect(fe(TP_SVC_ORIGIN.TP_SVC_FROM_OUTSIDE, 0, '10.250.1.10').lut_id).toBe(fe(TP_SVC_ORIGIN.TP_SVC_FROM_OUTSIDE, 1).lut_id);
    expect(out.frontends).toHaveLength(1 + 2 * 2 + 2); // ClusterIP; external and LB IP × 2 origins; NodePort × 2
    // On a node without a local backend, external traffic is dropped (endpoints exist elsewhere).
    const n4 = compileServices(input([s], PODS, { node: 'n4' }));
    const outside = n4.frontends.find((f) => f.key.origin === TP_SVC_ORIGIN.TP_SVC_FROM_OUTSIDE)!.value;
    expect(outside).toMatchObject({ lut_size: 0, empty: TP_SVC_EMPTY.TP_SVC_EMPTY_DROP });
  });

  it('service compile - no usable backend anywhere refuses; internalTrafficPolicy Local without a local one drops', () => {
    const none = compileServices(input([stored(`  selector: {app: nobody}\n  ports: [{port: 80}]\n`, [3])]));
    expect(none.frontends[0]!.value).toMatchObject({ lut_size: 0, empty: TP_SVC_EMPTY.TP_SVC_EMPTY_REJECT });
    const itp = compileServices(input([stored(`  internalTrafficPolicy: Local\n${WEB}  ports: [{port: 80, targetPort: 8080}]\n`, [4])], PODS, { node: 'n3' }));
    expect(itp.frontends[0]!.value).toMatchObject({ lut_size: 0, empty: TP_SVC_EMPTY.TP_SVC_EMPTY_DROP });
  });

  it('service compile - session affinity, headless services, SCTP and ports not allocated yet', () => {
    const sticky = compileServices(input([stored(`${WEB}  sessionAffinity: ClientIP\n  sessionAffinityConfig: {clientIP: {timeoutSeconds: 60}}\n  ports: [{port: 80, targetPort: 8080}]\n`, [1])]));
    expect(sticky.frontends[0]!.value.affinity_timeout_s).toBe(60);
    const headless = compileServices(input([stored(`  clusterIP: None\n${WEB}  ports: [{port: 80}]\n`, [2])]));
    expect(headless).toMatchObject({ frontends: [], backends: [] });
    const sctp = stored(`${WEB}  ports: [{port: 8080, protocol: SCTP}]\n`, [6]);
    const out = compileServices(input([sctp], [pod('s', 'n1', '10.244.1.20', { app: 'web' }, { ports: [{ port: 8080, protocol: 'SCTP' }] })]));
    expect(out.frontends[0]!.key.protocol).toBe(PROTO.SCTP);
    expect(out.backends.map((b) => b.value.port)).toEqual([8080]);
    expect(compileServices(input([{ ...sctp, ports: [{ ...sctp.ports[0]!, id: undefined }] }])).frontends).toEqual([]);
  });

  it('service compile - backend ids stay while backends stay, are freed when they go, and reused', () => {
    const ids = new BackendIds();
    const s = stored(`${WEB}  ports: [{port: 80, targetPort: 8080}]\n`, [1]);
    const first = compileServices(input([s], PODS, { backendIds: ids }));
    const again = compileServices(input([s], PODS, { backendIds: ids }));
    expect(again.backends).toEqual(first.backends);
    const withoutA = compileServices(input([s], PODS.slice(1), { backendIds: ids }));
    const idOf = (out: typeof first, ip: string) => out.backends.find((b) => addrString(4, b.value.addr) === ip)!.key;
    expect(idOf(withoutA, '10.244.2.10')).toBe(idOf(first, '10.244.2.10'));
    expect(withoutA.backends.some((b) => addrString(4, b.value.addr) === '10.244.1.10')).toBe(false);
    const newcomer = compileServices(input([s], [...PODS.slice(1), pod('e', 'n1', '10.244.1.30', { app: 'web' })], { backendIds: ids }));
    expect(idOf(newcomer, '10.244.1.30')).toBe(idOf(first, '10.244.1.10')); // the freed id
    const tiny = new BackendIds([], 3);
    expect(() => compileServices(input([s], PODS, { backendIds: tiny }))).toThrow(BackendIdsExhausted);
  });

  it('service compile - a new table size goes under the other generation, so a frontend never points at a table of another size', () => {
    const many = Array.from({ length: 12 }, (_, i) => pod(`p${i}`, 'n1', `10.244.1.${50 + i}`, { app: 'web' }));
    const s = stored(`${WEB}  ports: [{port: 80, targetPort: 8080}]\n`, [2]);
    const small = compileServices(input([s], many.slice(0, 10)));
    const id0 = small.frontends[0]!.value.lut_id;
    expect(small.frontends[0]!.value.lut_size).toBe(1021);
    const sizes = new Map([[id0, 1021]]);
    const big = compileServices(input([s], many, { currentTableSize: (id) => sizes.get(id) }));
    expect(big.frontends[0]!.value).toMatchObject({ lut_size: 4093, lut_id: id0 | 1 });
    // Same size again: the same id (no rewrite of an equal table).
    expect(compileServices(input([s], many.slice(0, 10), { currentTableSize: (id) => sizes.get(id) })).frontends[0]!.value.lut_id).toBe(id0);
  });

  it('service compile - a dual-stack service: each family its own backends, tables (IPv6 ids under the top bit, a new size under the other generation) and node port frontends; an external IP of a family the service lacks is ignored', () => {
    const dual = (p: PodRecord, six: string): PodRecord => ({ ...p, ips: [...p.ips, six] });
    const pods = [dual(PODS[0]!, 'fd00:10:244:1::a'), dual(PODS[1]!, 'fd00:10:244:2::a'), PODS[2]!];
    const s: Service = {
      ...stored(`  type: NodePort\n${WEB}  ports: [{port: 80, targetPort: 8080}]\n  externalIPs: [10.250.1.10, "fd00:10:251::10"]\n`, [5]),
      clusterIPs: ['10.96.0.10', 'fd00:10:96::a'],
      ipFamilies: ['IPv4', 'IPv6'],
      ipFamilyPolicy: 'RequireDualStack',
    };
    const out = compileServices(input([s], pods));
    const byFamily = (f: number) => out.frontends.filter((e) => e.key.family === f);
    const table = (v: { lut_id: number }) => [...new Set(out.luts.get(v.lut_id)!)].map((id) => addrString(out.backends.find((b) => b.key === id)!.value.family, out.backends.find((b) => b.key === id)!.value.addr)).sort();
    const v4 = byFamily(4).find((e) => e.key.nodeport === 0 && addrString(4, e.key.addr) === '10.96.0.10')!;
    const v6 = byFamily(6).find((e) => e.key.nodeport === 0 && addrString(6, e.key.addr) === 'fd00:10:96::a')!;
    expect(table(v4.value)).toEqual(['10.244.1.10', '10.244.2.10', '10.244.2.11']);
    expect(table(v6.value)).toEqual(['fd00:10:244:1::a', 'fd00:10:244:2::a']); // x/c has no IPv6 address
    expect(v6.value.lut_id).toBe((v4.value.lut_id | 0x80000000) >>> 0);
    // Node port frontends in both families; both external IPs are of the service's families.
    expect(out.frontends.filter((e) => e.key.nodeport === 1).map((e) => e.key.family).sort()).toEqual([4, 4, 6, 6]);
    expect(out.frontends.filter((e) => e.key.nodeport === 0).length).toBe(2 + 2 * 2);
    // A size change of the IPv6 table goes under its other generation, still an unsigned id.
    const many = Array.from({ length: 12 }, (_, i) => dual(pod(`p${i}`, 'n1', `10.244.1.${50 + i}`, { app: 'web' }), `fd00:10:244:1::${50 + i}`));
    const sizes = new Map([[v6.value.lut_id, 1021]]);
    const big = compileServices(input([s], many, { currentTableSize: (id) => sizes.get(id) }));
    const big6 = big.frontends.find((e) => e.key.family === 6 && e.key.nodeport === 0 && addrString(6, e.key.addr) === 'fd00:10:96::a')!;
    expect(big6.value).toMatchObject({ lut_size: 4093, lut_id: v6.value.lut_id + 1 });
    // An IPv4-only service gets no frontend for an IPv6 external IP (kube-proxy ignores it).
    const single = compileServices(input([{ ...s, clusterIPs: ['10.96.0.10'], ipFamilies: ['IPv4'], ipFamilyPolicy: 'SingleStack' }], pods));
    expect(single.frontends.some((e) => e.key.family === 6)).toBe(false);
  });

  it('service compile - every node builds the same table for the same backends', () => {
    const s = stored(`${WEB}  ports: [{port: 80, targetPort: 8080}]\n`, [1]);
    const tableOn = (node: string) => {
      const out = compileServices(input([s], PODS, { node }));
      const byId = new Map(out.backends.map((b) => [b.key, addrString(4, b.value.addr)]));
      return [...out.luts.get(out.frontends[0]!.value.lut_id)!].map((id) => byId.get(id));
    };
    expect(tableOn('n2')).toEqual(tableOn('n1'));
    expect(tableOn('n3')).toEqual(tableOn('n1'));
  });

  it('service compile - health checks count ready local backend pods of Local load balancers', () => {
    const s = { ...stored(`  type: LoadBalancer\n  externalTrafficPolicy: Local\n${WEB}  ports: [{name: a, port: 80, targetPort: 8080}, {name: b, port: 81, targetPort: 8080}]\n`, [1, 2]), healthCheckNodePort: 31000 };
    expect(healthChecks([s], PODS, 'n2')).toEqual([{ port: 31000, namespace: 'x', name: 'web', localEndpoints: 2 }]);
    expect(healthChecks([s], PODS, 'n3')[0]!.localEndpoints).toBe(0);
    expect(healthChecks([stored(`${WEB}  ports: [{port: 80}]\n`, [3])], PODS, 'n1')).toEqual([]);
  });
});
