/**
 * Upgrading from tcplane 0.1, whose conntrack table was tp_ct_v1 (a smaller value, no
 * service translation), to tp_ct_v2, without dropping a packet of an established
 * connection and without a moment unenforced:
 *
 *   1. the new object is loaded against the old pins: tp_ct_v1 (declared by the new
 *      object with the old layout) and every unchanged map are adopted, tp_ct_v2 is new;
 *   2. tp_config.ct_legacy = 1: from now on the new programs look a connection missing
 *      from tp_ct_v2 up in tp_ct_v1 and move it over (bpf/lib/conntrack.h);
 *   3. every tp_ct_v1 entry is copied into tp_ct_v2 (never over an entry already there);
 *   4. the programs are swapped in every hook (bpf_link_update / clsact replace): the
 *      old programs enforce until the instant the new ones do, with the same policy maps;
 *   5. once every hook runs the new programs (nothing writes tp_ct_v1 any more), the copy
 *      runs once more for entries the old programs made during 3–4, ct_legacy = 0, and
 *      the tp_ct_v1 pin is removed (the map is freed with the last program using it).
 * A crash anywhere repeats the steps on the next start: copies never overwrite.
 */
import type { TypedMap } from '../bpf/map.js';
import { BpfError } from '../bpf/errors.js';
import { BPF_NOEXIST } from '../bpf/libbpf.js';
import { TP_CT_NAT } from './constants.js';
import { updateConfig } from './runtime-config.js';
import type { TpConfig, TpCtEntry, TpCtEntryV1, TpCtKey } from './structs.js';

const EEXIST = 17;
const ZERO16 = Buffer.alloc(16);

/** The tp_ct_v2 value of a tp_ct_v1 entry: the same connection, no translation. */
export function upgradeCtEntry(e: TpCtEntryV1): TpCtEntry {
  return {
    expires_ns: e.expires_ns,
    rule_id: e.rule_id,
    policy_gen: 0,
    service_id: 0,
    backend_id: 0,
    flags: e.flags,
    opened: e.opened,
    nat: TP_CT_NAT.TP_CT_NAT_NONE,
    audit: 0,
    frontend_port: 0,
    backend_port: 0,
    frontend_addr: ZERO16,
    backend_addr: ZERO16,
    nat_addr: ZERO16,
    nat_port: 0,
    route: 0, // the stack's way (lib/forward.h)
    key_tag: 0, // no tag: never taken over in place (lib/conntrack.h)
  };
}

/** Copies every tp_ct_v1 entry that tp_ct_v2 lacks; returns how many it copied. */
export function copyLegacyConntrack(legacy: TypedMap<TpCtKey, TpCtEntryV1>, ct: TypedMap<TpCtKey, TpCtEntry>): number {
  let copied = 0;
  for (const [k, v] of legacy.raw.entries()) {
    const value = ct.valueCodec.encode(upgradeCtEntry(legacy.valueCodec.decode(v)));
    try {
      ct.raw.update(k, value, BPF_NOEXIST);
      copied++;
    } catch (err) {
      // Already there: the new programs moved it (or a first copy did); theirs is newer.
      if (!(err instanceof BpfError && err.errno === EEXIST)) throw err;
    }
  }
  return copied;
}

/** Sets tp_config.ct_legacy, keeping the rest of the record. */
export function setCtLegacy(config: TypedMap<number, TpConfig>, on: boolean): void {
  updateConfig(config, { ct_legacy: on ? 1 : 0 });
}
