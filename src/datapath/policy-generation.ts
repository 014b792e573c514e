/**
 * Policy generations (tp_endpoint.policy_gen, bpf/include/tp_endpoint.h): before the
 * policy maps are written, every endpoint whose connections may now be judged otherwise
 * gets its generation moved by one, so the datapath judges each of its connections again
 * at its next packet. That is the case when
 *   - one of its policy entries is written or deleted, or its defaults change, or
 *   - a peer address changes identity or goes away (an ipcache or CIDR entry rewritten
 *     or deleted): any endpoint's connection with it may be judged otherwise now. A new
 *     address moves nothing: no connection has judged it yet.
 * The generation is read back from the map, so a restarted agent writing the same
 * entries moves nothing.
 */
import type { PolicyMaps } from './desired.js';
import type { MapMirror } from './sync.js';
import type { TpEndpoint, TpIpKey, TpPolicyKey, TpPolicyValue } from './structs.js';
import type { Entry } from './desired.js';

export interface GenerationMirrors {
  policy: MapMirror<TpPolicyKey, TpPolicyValue>;
  ipcache: MapMirror<TpIpKey, unknown>;
  ipcidr: MapMirror<unknown, unknown>;
  endpoints: MapMirror<TpIpKey, TpEndpoint>;
}

/** `desired` with each endpoint's generation: the one it has, or the next where it must move. */
export function withGenerations(m: GenerationMirrors, desired: PolicyMaps): PolicyMaps {
  const policy = m.policy.diff(desired.policy);
  const moved = new Set<number>();
  for (const [k] of policy.upserts) moved.add(m.policy.map.keyCodec.decode(k).endpoint_id);
  for (const k of policy.deletes) moved.add(m.policy.map.keyCodec.decode(k).endpoint_id);
  const peersMoved = [m.ipcache.diff(desired.ipcache), (m.ipcidr as MapMirror<unknown, unknown>).diff(desired.ipcidr)].some(
    (d) => d.deletes.length > 0 || d.upserts.some(([k]) => holds(m.ipcache, m.ipcidr, k)),
  );
  const endpoints: Entry<TpIpKey, TpEndpoint>[] = desired.endpoints.map((e) => {
    const now = m.endpoints.get(e.key);
    if (!now) return { key: e.key, value: { ...e.value, policy_gen: 0 } };
    const changed =
      peersMoved ||
      moved.has(e.value.id) ||
      now.id !== e.value.id ||
      now.identity !== e.value.identity ||
      now.ingress_default !== e.value.ingress_default ||
      now.egress_default !== e.value.egress_default;
    return { key: e.key, value: { ...e.value, policy_gen: changed ? (now.policy_gen + 1) & 0xffff : now.policy_gen } };
  });
  return { ...desired, endpoints };
}

/** Whether key k (of either peer map) is one the maps hold already: an existing address rewritten. */
function holds(ipcache: MapMirror<TpIpKey, unknown>, ipcidr: MapMirror<unknown, unknown>, k: Buffer): boolean {
  const hex = k.toString('hex');
  return ipcache.holds(hex) || ipcidr.holds(hex);
}
