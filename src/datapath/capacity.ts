/**
 * Full maps fail closed. The policy map holds a fixed number of entries (the agent's
 * budget: its --policy-map-entries, at most the map's own size); when the entries the
 * local endpoints need do not all fit, or one endpoint needs more than the per-endpoint
 * limit, whole endpoints are left out — never a random subset of anyone's entries — and
 * those endpoints admit nothing: both defaults TP_VERDICT_CLOSED and no entries, so
 * every packet of theirs, established connections included (their generation moves),
 * drops as TP_DROP_FAIL_CLOSED. Which endpoints: those that had their entries last time
 * and need no more now keep them first (a new pod, or one whose policies grew, never
 * closes one that did not change), then the others by endpoint id; each is taken whole
 * while it fits.
 */
import { VERDICT_CLOSED } from './constants.js';
import type { PolicyMaps } from './desired.js';

export interface Capacity {
  /** Policy entries the node may write in all. */
  policyEntries: number;
  /** Policy entries one endpoint may have (0: no limit of its own). */
  perEndpoint: number;
}

export interface FailedEndpoint {
  endpointId: number;
  /** Entries it needed. */
  needed: number;
  why: 'per-endpoint limit' | 'policy map full';
}

/**
 * desired with the endpoints that do not fit closed; `written`: each endpoint id that
 * had its entries last time, with how many. `fitted`: the same for this time.
 */
export function fitPolicyMap(
  desired: PolicyMaps,
  cap: Capacity,
  written: ReadonlyMap<number, number>,
): { maps: PolicyMaps; failed: FailedEndpoint[]; fitted: Map<number, number> } {
  const need = new Map<number, number>();
  for (const e of desired.policy) need.set(e.key.endpoint_id, (need.get(e.key.endpoint_id) ?? 0) + 1);
  const total = [...need.values()].reduce((a, n) => a + n, 0);
  const overLimit = cap.perEndpoint > 0 && [...need.values()].some((n) => n > cap.perEndpoint);
  const ids = [...new Set(desired.endpoints.map((e) => e.value.id))];
  if (total <= cap.policyEntries && !overLimit) return { maps: desired, failed: [], fitted: new Map(ids.map((id) => [id, need.get(id) ?? 0])) };

  const unchanged = (id: number) => written.has(id) && (need.get(id) ?? 0) <= written.get(id)!;
  ids.sort((a, b) => Number(unchanged(b)) - Number(unchanged(a)) || a - b);
  const failed: FailedEndpoint[] = [];
  const fitted = new Map<number, number>();
  let used = 0;
  for (const id of ids) {
    const n = need.get(id) ?? 0;
    if (cap.perEndpoint > 0 && n > cap.perEndpoint) failed.push({ endpointId: id, needed: n, why: 'per-endpoint limit' });
    else if (used + n > cap.policyEntries) failed.push({ endpointId: id, needed: n, why: 'policy map full' });
    else {
      used += n;
      fitted.set(id, n);
    }
  }
  const closed = new Set(failed.map((f) => f.endpointId));
  return {
    maps: {
      ...desired,
      policy: desired.policy.filter((e) => !closed.has(e.key.endpoint_id)),
      endpoints: desired.endpoints.map((e) => (closed.has(e.value.id) ? { ...e, value: { ...e.value, ingress_default: VERDICT_CLOSED, egress_default: VERDICT_CLOSED } } : e)),
    },
    failed,
    fitted,
  };
}
