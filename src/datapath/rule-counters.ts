/**
 * Packets and bytes per policy rule (tp_rulecnt_v1, bpf/include/tp_policy.h): the agent
 * keeps one entry per rule id its policy entries use (a new rule starts at zero, a rule
 * no longer used is removed with its counts); the datapath adds to them. Counts are the
 * kernel's, summed over CPUs when read.
 */
import { BpfMap } from '../bpf/map.js';
import { tpRuleCounter } from './structs.js';

export interface RuleCount {
  packets: bigint;
  bytes: bigint;
}

const idKey = (id: number) => {
  const k = Buffer.alloc(4);
  k.writeUInt32LE(id >>> 0);
  return k;
};

export class RuleCounters {
  constructor(private readonly map: BpfMap) {}

  /**
   * Makes the map hold exactly these rule ids: missing ones at zero, others removed.
   * Returns [added, removed, uncounted]: rules past the map's size go uncounted (their
   * packets are still judged; only their counts are missing).
   */
  sync(ids: Iterable<number>): [number, number, number] {
    const want = new Set([...ids].filter((id) => id !== 0).map((id) => id >>> 0));
    let removed = 0;
    let held = 0;
    for (const k of [...this.map.keys()]) {
      if (!want.delete(k.readUInt32LE(0))) {
        this.map.delete(k);
        removed++;
      } else held++;
    }
    const zero = Buffer.alloc(this.map.valueBufferSize);
    const room = Math.max(0, this.map.info.maxEntries - held);
    const adding = [...want].sort((a, b) => a - b).slice(0, room);
    for (const id of adding) this.map.update(idKey(id), zero, 1 /* BPF_NOEXIST: never reset a live count */);
    return [adding.length, removed, want.size - adding.length];
  }

  /** Every rule's counts, summed over CPUs. */
  read(): Map<number, RuleCount> {
    const out = new Map<number, RuleCount>();
    for (const k of this.map.keys()) {
      const slots = this.map.lookupPerCpu(k);
      if (!slots) continue; // removed meanwhile
      const sum = { packets: 0n, bytes: 0n };
      for (const s of slots) {
        const v = tpRuleCounter.decode(s);
        sum.packets += v.packets;
        sum.bytes += v.bytes;
      }
      out.set(k.readUInt32LE(0), sum);
    }
    return out;
  }
}
