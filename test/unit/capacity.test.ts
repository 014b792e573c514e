// Full maps fail closed (src/datapath/capacity.ts): whole endpoints are left out, the
// ones that did not change keep their entries first, and a closed endpoint has no
// entries and both defaults closed.
import { describe, expect, it } from 'vitest';
import { fitPolicyMap } from '../../src/datapath/capacity.js';
import { VERDICT_ALLOW, VERDICT_CLOSED, VERDICT_DENY } from '../../src/datapath/constants.js';
import type { PolicyMaps } from '../../src/datapath/desired.js';
import { ipKey } from '../../src/datapath/addr.js';
import { policyEntry } from '../../src/datapath/policy-keys.js';

/** Endpoints 1, 2, 3 needing `need[i]` entries each. */
function desired(need: number[]): PolicyMaps {
  return {
    endpoints: need.map((_, i) => ({
      key: ipKey(`10.244.1.${i + 1}`),
      value: { id: i + 1, identity: 300, ifindex: 10 + i, ingress_default: VERDICT_DENY, egress_default: VERDICT_ALLOW, policy_gen: 0 },
    })),
    policy: need.flatMap((n, i) => Array.from({ length: n }, (_, p) => policyEntry(i + 1, 256 + p, 0, { protocol: 6, ports: 'any' }, 'allow', 0x80000001))),
    ipcache: [],
    ipcidr: [],
    rules: [],
    isolation: [],
  };
}
const entriesOf = (m: PolicyMaps, id: number) => m.policy.filter((e) => e.key.endpoint_id === id).length;
const defaultsOf = (m: PolicyMaps, id: number) => {
  const v = m.endpoints.find((e) => e.value.id === id)!.value;
  return [v.ingress_default, v.egress_default];
};

describe('capacity', () => {
  it('capacity - what fits is written as compiled', () => {
    const d = desired([3, 4, 5]);
    const r = fitPolicyMap(d, { policyEntries: 12, perEndpoint: 0 }, new Map());
    expect(r.maps).toBe(d);
    expect(r.failed).toEqual([]);
    expect([...r.fitted]).toEqual([[1, 3], [2, 4], [3, 5]]);
  });

  it('capacity - over the budget, whole endpoints close: by id, none of them half written', () => {
    const r = fitPolicyMap(desired([3, 4, 5]), { policyEntries: 8, perEndpoint: 0 }, new Map());
    expect(r.failed).toEqual([{ endpointId: 3, needed: 5, why: 'policy map full' }]);
    expect([1, 2, 3].map((id) => entriesOf(r.maps, id))).toEqual([3, 4, 0]);
    expect(defaultsOf(r.maps, 3)).toEqual([VERDICT_CLOSED, VERDICT_CLOSED]);
    expect(defaultsOf(r.maps, 1)).toEqual([VERDICT_DENY, VERDICT_ALLOW]);
    expect(r.maps.policy.length).toBeLessThanOrEqual(8);
  });

  it('capacity - an endpoint whose entries grew closes before one that did not change', () => {
    // Endpoint 1 had 3 and now needs 6; 2 and 3 are as they were.
    const r = fitPolicyMap(desired([6, 4, 5]), { policyEntries: 10, perEndpoint: 0 }, new Map([[1, 3], [2, 4], [3, 5]]));
    expect(r.failed.map((f) => f.endpointId)).toEqual([1]);
    expect([...r.fitted.keys()].sort()).toEqual([2, 3]);
  });

  it('capacity - the per-endpoint limit closes the endpoint past it, whatever room is left', () => {
    const r = fitPolicyMap(desired([3, 40, 5]), { policyEntries: 1000, perEndpoint: 10 }, new Map());
    expect(r.failed).toEqual([{ endpointId: 2, needed: 40, why: 'per-endpoint limit' }]);
    expect(entriesOf(r.maps, 2)).toBe(0);
  });

  it('capacity - an endpoint without entries never closes', () => {
    const r = fitPolicyMap(desired([0, 9, 0]), { policyEntries: 5, perEndpoint: 0 }, new Map());
    expect(r.failed.map((f) => f.endpointId)).toEqual([2]);
    expect(defaultsOf(r.maps, 1)).toEqual([VERDICT_DENY, VERDICT_ALLOW]);
  });
});
