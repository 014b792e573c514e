// Compares every struct and enum shared with the BPF programs against the compiled
// object's BTF. Needs `make` (the object) but no root.
import { afterAll, describe, expect, it } from 'vitest';
import { Btf } from '../../src/bpf/btf.js';
import { readObjectSpec } from '../../src/bpf/object.js';
import * as C from '../../src/datapath/constants.js';
import { TP_REASON } from '../../src/datapath/reasons.js';
import { SHARED_STRUCTS } from '../../src/datapath/structs.js';
import { MAP_NAMES, PROGRAM_NAMES, RODATA_NAMES } from '../../src/gen/bpf-names.js';
import { OBJECT_PATH } from '../helpers/paths.js';

const btf = Btf.fromFile(OBJECT_PATH);
afterAll(() => btf.close());

describe('layout - structs', () => {
  for (const codec of SHARED_STRUCTS) {
    it(`layout - ${codec.cName} matches BTF size and every field offset`, () => {
      const s = btf.struct(codec.cName);
      expect(s, `struct ${codec.cName} in BTF`).toBeDefined();
      expect(codec.size).toBe(s!.size);
      expect(codec.fields.map((f) => [f.name, f.offset, f.size])).toEqual(
        s!.members.map((m) => [m.name, m.offset, m.size]),
      );
    });
  }
});

describe('layout - enums', () => {
  const mirrors: [string, Record<string, number>][] = [
    ['tp_family', C.TP_FAMILY],
    ['tp_direction', C.TP_DIRECTION],
    ['tp_verdict', C.TP_VERDICT],
    ['tp_reserved_identity', C.TP_RESERVED_IDENTITY],
    ['tp_reason', TP_REASON],
    ['tp_ct_flags', C.TP_CT_FLAGS],
    ['tp_ct_nat', C.TP_CT_NAT],
    ['tp_ct_route', C.TP_CT_ROUTE],
    ['tp_policy_prefix', C.TP_POLICY_PREFIX],
    ['tp_ipcidr_prefix', C.TP_IPCIDR_PREFIX],
    ['tp_metrics_size', C.TP_METRICS_SIZE],
    ['tp_hook', C.TP_HOOK],
    ['tp_ct_endpoint', C.TP_CT_ENDPOINT],
    ['tp_svc_origin', C.TP_SVC_ORIGIN],
    ['tp_svc_empty', C.TP_SVC_EMPTY],
    ['tp_backend_state', C.TP_BACKEND_STATE],
    ['tp_lb_limits', C.TP_LB_LIMITS],
    ['tp_affinity_scope', C.TP_AFFINITY_SCOPE],
    ['tp_event_flags', C.TP_EVENT_FLAGS],
  ];
  for (const [name, mirror] of mirrors) {
    it(`layout - enum ${name} has the same enumerators and values`, () => {
      expect(btf.enum(name)).toEqual(mirror);
    });
  }
});

describe('layout - names', () => {
  it('layout - generated names are exactly the maps, programs and knobs of the object', () => {
    const spec = readObjectSpec(OBJECT_PATH);
    expect(spec.maps.map((m) => m.name).sort()).toEqual(Object.keys(MAP_NAMES).sort());
    expect(spec.programs.map((p) => p.name).sort()).toEqual(Object.keys(PROGRAM_NAMES).sort());
    expect(spec.rodata.map((v) => v.name).filter((n) => n !== 'tp_btf_anchor').sort()).toEqual(
      Object.keys(RODATA_NAMES).sort(),
    );
  });

  it('layout - map names fit the kernel name length, so pins and kernel names agree', () => {
    for (const name of Object.keys(MAP_NAMES)) expect(name.length).toBeLessThanOrEqual(15);
  });

  it('layout - map key and value sizes match the codecs the agent uses', () => {
    const spec = readObjectSpec(OBJECT_PATH);
    const size = (n: string) => SHARED_STRUCTS.find((c) => c.cName === n)!.size;
    const want: Record<string, [number, number]> = {
      tp_endpoints_v1: [size('tp_ip_key'), size('tp_endpoint')],
      tp_ipcache_v1: [size('tp_ip_key'), size('tp_ipcache_value')],
      tp_ipcidr_v1: [size('tp_ipcidr_key'), size('tp_ipcache_value')],
      tp_policy_v1: [size('tp_policy_key'), size('tp_policy_value')],
      tp_ct_v2: [size('tp_ct_key'), size('tp_ct_entry')],
      tp_ct_v1: [size('tp_ct_key'), size('tp_ct_entry_v1')],
      tp_config_v1: [4, size('tp_config')],
      tp_frag_v1: [size('tp_frag_key'), size('tp_frag_ports')],
      tp_metrics_v2: [4, size('tp_metrics_value')],
      tp_svc_v1: [size('tp_svc_key'), size('tp_svc_value')],
      tp_lut_v1: [4, 4], // values are inner map fds (user space) / ids (lookups)
      tp_backends_v1: [4, size('tp_backend')],
      tp_affinity_v1: [size('tp_affinity_key'), size('tp_affinity_value')],
      tp_scratch_v1: [4, 256], // datapath-only: where refusals are assembled
      tp_events_v1: [0, 0], // a ring buffer: records of struct tp_event, no keys or values
      tp_evstats_v1: [4, size('tp_event_stats')],
      tp_rulecnt_v1: [4, size('tp_rule_counter')],
      tp_evrate_v1: [4, size('tp_event_budget')],
    };
    for (const m of spec.maps) expect([m.name, m.keySize, m.valueSize]).toEqual([m.name, ...want[m.name]!]);
  });
});
