// A full policy map fails closed in the shipped datapath: an endpoint whose entries did
// not fit (src/datapath/capacity.ts, as the agent applies it) drops every packet — new
// connections, established ones and their replies — counted as drop_fail_closed, while
// the endpoints that fit go on as before; once its entries fit again it is back.
// Needs root and `make` first.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testRun, TC_ACT } from '../../src/bpf/testrun.js';
import { fitPolicyMap } from '../../src/datapath/capacity.js';
import { NodeDatapath } from '../../src/datapath/node-datapath.js';
import { reasonName } from '../../src/datapath/reasons.js';
import { PROGRAM_NAMES } from '../../src/gen/bpf-names.js';
import { compile } from '../../src/policy/compile.js';
import { netpol, TWO_NODE_BASE } from '../helpers/cluster.js';
import { frameOf } from '../helpers/frames.js';
import { desiredInputOf, reply, type ModelCluster, type ModelPacket } from '../helpers/model.js';
import { OBJECT_PATH } from '../helpers/paths.js';

const A = '10.244.1.10'; // x/a, local, isolated: admits x/c on TCP 80
const B = '10.244.1.11'; // x/b, local, no policy
const C = '10.244.2.12'; // x/c on n2
const sel = (l: Record<string, string>) => ({ matchLabels: l, matchExpressions: [] });
const CLUSTER: ModelCluster = {
  ...TWO_NODE_BASE,
  pods: [
    { namespace: 'x', name: 'a', node: 'n1', labels: { app: 'a' }, ips: [A] },
    { namespace: 'x', name: 'b', node: 'n1', labels: { app: 'b' }, ips: [B] },
    { namespace: 'x', name: 'c', node: 'n2', labels: { app: 'c' }, ips: [C] },
  ],
  policies: [netpol('x', 'a-from-c', { podSelector: sel({ app: 'a' }), ingress: [{ from: [{ podSelector: sel({ app: 'c' }) }], ports: [{ protocol: 'TCP', port: 80 }] }] })],
};
const bridge = desiredInputOf(CLUSTER);
const desired = compile(bridge.input);
const tcp = (src: string, dst: string, dport: number, sport: number, tcpFlags: number): ModelPacket => ({ src, dst, protocol: 'TCP', sport, dport, tcpFlags });

let dp: NodeDatapath;
beforeAll(() => {
  dp = NodeDatapath.open({ objectPath: OBJECT_PATH });
});
afterAll(() => dp?.close());

/** Runs a packet; its verdict and the one reason counted. */
function run(hook: 'tp_to_pod' | 'tp_from_pod', p: ModelPacket): [string, string] {
  const before = new Map(dp.readMetrics().map((r) => [`${r.direction}/${r.reason}`, r.packets]));
  const rv = testRun(dp.obj.program(PROGRAM_NAMES[hook]), frameOf(p).build()).retval;
  const grew = dp.readMetrics().filter((r) => r.packets !== (before.get(`${r.direction}/${r.reason}`) ?? 0n));
  return [rv === TC_ACT.UNSPEC ? 'pass' : rv === TC_ACT.SHOT ? 'drop' : `retval ${rv}`, grew.length === 1 ? reasonName(grew[0]!.reason) : `${grew.length} reasons`];
}

describe('fail closed', () => {
  const syn = tcp(C, A, 80, 41000, 0x02);

  it('fail closed - an endpoint whose entries do not fit drops everything, its established connection too; the others go on', () => {
    dp.maps.sync(desired);
    expect(run('tp_to_pod', syn)).toEqual(['pass', 'pass_policy']);
    expect(run('tp_from_pod', reply(syn))).toEqual(['pass', 'pass_reply']);

    // One entry of room: x/a needs more, so it closes, whole.
    const fit = fitPolicyMap(desired, { policyEntries: 1, perEndpoint: 0 }, new Map());
    expect(fit.failed.map((f) => f.endpointId)).toEqual([bridge.endpointIds.get('x/a')]);
    dp.maps.sync(fit.maps);
    expect(run('tp_to_pod', tcp(C, A, 80, 41000, 0x10))).toEqual(['drop', 'drop_fail_closed']); // established
    expect(run('tp_from_pod', reply(syn))).toEqual(['drop', 'drop_fail_closed']); // its reply
    expect(run('tp_to_pod', tcp(C, A, 80, 41001, 0x02))).toEqual(['drop', 'drop_fail_closed']); // new
    expect(run('tp_from_pod', tcp(A, C, 443, 41002, 0x02))).toEqual(['drop', 'drop_fail_closed']); // and what it sends
    expect(run('tp_to_pod', tcp(C, B, 80, 41003, 0x02))).toEqual(['pass', 'pass_default']); // x/b fits: as before
  });

  it('fail closed - once its entries fit again, the endpoint admits what its policies allow', () => {
    dp.maps.sync(desired);
    expect(run('tp_to_pod', tcp(C, A, 80, 42000, 0x02))).toEqual(['pass', 'pass_policy']);
  });
});
