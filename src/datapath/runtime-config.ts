/** The agent's side of tp_config_v1 (bpf/include/tp_config.h): read, change a field, write. */
import type { TypedMap } from '../bpf/map.js';
import type { TpConfig } from './structs.js';

const NONE: TpConfig = { lb_seed: 0, ct_legacy: 0, uplink_ifindex: 0, node_addr4: Buffer.alloc(4), node_addr6: Buffer.alloc(16) };

/** Writes `patch` over the current record (one update); writes nothing when nothing changes. */
export function updateConfig(config: TypedMap<number, TpConfig>, patch: Partial<TpConfig>): void {
  const cur = config.lookup(0) ?? NONE;
  const next = { ...cur, ...patch };
  if (config.valueCodec.encode(next).equals(config.valueCodec.encode(cur))) return;
  config.update(0, next);
}
