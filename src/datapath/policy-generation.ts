/**
 * Policy generations (tp_endpoint.policy_gen, bpf/include/tp_endpoint.h): before the
 * policy maps are written, every endpoint whose connections may now be judged otherwise
 * gets its generation moved by one, so the datapath judges each of its connections again
 * at its next packet. That is the case when
 *   - one of its policy entries is written or deleted, or its defaults change, or
 *   - a peer address changes identity or goes away (an ipcache entry rewritten or
 *     deleted, any CIDR entry written or deleted: a new prefix takes over the addresses
 *     it covers from a shorter one): the connections of any endpoint that is isolated or
 *     has policy entries (cluster policies' rules, under an allow default) may be judged
 *     otherwise now. A new exact address moves nothing: no connection has judged
 *     it yet (but see the README: an address in a pod range judged as unmanaged before
 *     its pod was known).
 * The generation is read back from the map, so a restarted agent writing the same
 * entries moves nothing.
 */
import { VERDICT_ALLOW } from './constants.js';
import type { PolicyMaps } from './desired.js';
import type { MapDiff, MapMirror } from './sync.js';
import type { TpEndpoint, TpIpcidrKey, TpIpKey, TpPolicyKey, TpPolicyValue } from './structs.js';
import type { Entry } from './desired.js';

export interface GenerationMirrors {
  policy: MapMirror<TpPolicyKey, TpPolicyValue>;
  ipcache: MapMirror<TpIpKey, unknown>;
  ipcidr: MapMirror<TpIpcidrKey, unknown>;
  endpoints: MapMirror<TpIpKey, TpEndpoint>;
}

/**
 * Each endpoint's generation for `desired`: `staged` keeps the generation it has (written
 * with the other entries, so a default flips in order), `moved` holds the endpoints whose
 * generation must move, with the next one — written last, once every entry the change
 * deletes is gone, so no packet is judged again against a rule on its way out. `diffs`:
 * the differences of the other maps it computed on the way, for the writer to apply.
 */
export function generationsFor(
  m: GenerationMirrors,
  desired: PolicyMaps,
): { staged: PolicyMaps; moved: Entry<TpIpKey, TpEndpoint>[]; diffs: { policy: MapDiff; ipcache: MapDiff; ipcidr: MapDiff } } {
  const diffs = { policy: m.policy.diff(desired.policy), ipcache: m.ipcache.diff(desired.ipcache), ipcidr: m.ipcidr.diff(desired.ipcidr) };
  const touched = new Set<number>();
  for (const [k] of diffs.policy.upserts) touched.add(m.policy.map.keyCodec.decode(k).endpoint_id);
  for (const k of diffs.policy.deletes) touched.add(m.policy.map.keyCodec.decode(k).endpoint_id);
  // An address rewritten (held already) or gone; any prefix written or gone.
  const peersMoved =
    diffs.ipcache.deletes.length > 0 ||
    diffs.ipcache.upserts.some(([k]) => m.ipcache.holds(k.toString('hex'))) ||
    diffs.ipcidr.deletes.length > 0 ||
    diffs.ipcidr.upserts.length > 0;
  const withEntries = new Set(desired.policy.map((e) => e.key.endpoint_id));
  const staged: Entry<TpIpKey, TpEndpoint>[] = [];
  const moved: Entry<TpIpKey, TpEndpoint>[] = [];
  for (const e of desired.endpoints) {
    const now = m.endpoints.get(e.key);
    const gen = now?.policy_gen ?? 0;
    staged.push({ key: e.key, value: { ...e.value, policy_gen: gen } });
    if (!now) continue;
    // A pod isolated in neither direction and without policy entries (no cluster policy
    // rule either) allows whatever its peers are: peers moving change none of its verdicts.
    const isolated = e.value.ingress_default !== VERDICT_ALLOW || e.value.egress_default !== VERDICT_ALLOW || withEntries.has(e.value.id);
    const changed =
      (peersMoved && isolated) ||
      touched.has(e.value.id) ||
      now.id !== e.value.id ||
      now.identity !== e.value.identity ||
      now.ingress_default !== e.value.ingress_default ||
      now.egress_default !== e.value.egress_default;
    if (changed) moved.push({ key: e.key, value: { ...e.value, policy_gen: (gen + 1) & 0xffff } });
  }
  return { staged: { ...desired, endpoints: staged }, moved, diffs };
}
