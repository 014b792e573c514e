/**
 * Retiring the uplink's egress program. Earlier builds ran tp_to_uplink on the uplink's
 * tc egress, where a local backend's reply to a client outside the cluster got its
 * frontend back as source (reverse NAT, from the uplink's RNAT entry). The programs now
 * do that in tp_from_pod, for a reply whose own entry carries TP_CT_F_OUTSIDE, which the
 * new programs set when a peer that is no pod opens a connection. Connections opened
 * under the old programs lack the flag, so an agent that adopts an old uplink egress
 * link, without a reply going out untranslated:
 *
 *   1. swaps every hook to the new programs (from then on new entries carry the flag);
 *   2. marks the entries the old programs made: every pod entry whose connection has an
 *      RNAT entry on the uplink (markOutsideConnections) — meanwhile the old egress
 *      program still translates their replies, and a reply the new tp_from_pod already
 *      translated no longer matches its entry there, so none is translated twice;
 *   3. detaches the old egress link (or clsact filter): NodeDatapath.finishRetirement,
 *      which the agent calls once every pod hook runs the new programs.
 * What it does not cover: the mark is a read-modify-write of a live entry (a refresh the
 * datapath makes in between is undone, and redone by the connection's next packet), and
 * an entry the walk misses while the table changes, or a backend's own entry evicted
 * while the uplink's lives, has its replies leave untranslated once the link is gone.
 */
import type { TypedMap } from '../bpf/map.js';
import { TP_CT_ENDPOINT, TP_CT_FLAGS, TP_CT_NAT } from './constants.js';
import type { TpCtEntry, TpCtKey, TpEndpoint, TpIpKey } from './structs.js';

/** Step 2: sets TP_CT_F_OUTSIDE on the local backends' entries of external connections; returns how many it marked. */
export function markOutsideConnections(ct: TypedMap<TpCtKey, TpCtEntry>, endpoints: TypedMap<TpIpKey, TpEndpoint>): number {
  let marked = 0;
  for (const [rawKey, rawValue] of ct.raw.entries()) {
    const k = ct.keyCodec.decode(rawKey);
    const e = ct.valueCodec.decode(rawValue);
    if (k.endpoint_id !== TP_CT_ENDPOINT.TP_CT_EP_UPLINK || e.nat !== TP_CT_NAT.TP_CT_NAT_RNAT || e.flags & TP_CT_FLAGS.TP_CT_F_SNAT) continue;
    // The uplink's RNAT entry is keyed backend ↔ client, as the backend's own entry is.
    const ep = endpoints.lookup({ family: k.family, addr: k.pod_addr });
    if (!ep) continue; // the backend went away
    const podKey: TpCtKey = { ...k, endpoint_id: ep.id };
    const own = ct.lookup(podKey);
    if (!own || own.flags & TP_CT_FLAGS.TP_CT_F_OUTSIDE) continue;
    ct.update(podKey, { ...own, flags: own.flags | TP_CT_FLAGS.TP_CT_F_OUTSIDE });
    marked++;
  }
  return marked;
}
