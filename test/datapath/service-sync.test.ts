// The service maps written per service: only what changed is compared and written, a key
// passing from one service to another in one change stays, and a restarted agent adopts
// what is pinned. Needs root (loads the BPF object, pins on bpffs) and `make` first.
import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBpffs } from '../../src/bpf/bpffs.js';
import { addrBytes } from '../../src/datapath/addr.js';
import { NodeDatapath } from '../../src/datapath/node-datapath.js';
import { BackendIds, backendKey } from '../../src/services/backend-ids.js';
import { ServiceCompiler } from '../../src/services/compile.js';
import { parseServiceText } from '../../src/services/parse.js';
import type { Service } from '../../src/services/types.js';
import type { PodRecord } from '../../src/store/schema.js';
import { addrString } from '../../src/datapath/addr.js';
import { OBJECT_PATH } from '../helpers/paths.js';

const pinDir = `/sys/fs/bpf/tp-test-svcsync-${process.pid}`;
afterAll(() => rmSync(pinDir, { recursive: true, force: true }));

const pod = (name: string, ip: string, app: string): PodRecord => ({
  v: 1, namespace: 'x', name, node: 'n1', labels: { app }, ips: [ip], ifname: `tp-${name}`, ports: [{ name: 'http', port: 8080, protocol: 'TCP' }], ready: true,
});
const PODS = [pod('a', '10.244.1.10', 'web'), pod('b', '10.244.1.11', 'web'), pod('c', '10.244.1.12', 'api')];

function svc(name: string, app: string, ip: string, id: number): Service {
  const s = parseServiceText(`apiVersion: v1\nkind: Service\nmetadata: {name: ${name}, namespace: x}\nspec:\n  selector: {app: ${app}}\n  ports: [{port: 80, targetPort: http}]\n`, 't.yaml')[0]!;
  return { ...s, clusterIPs: [ip], ports: [{ ...s.ports[0]!, id }] };
}

function writer(dp: NodeDatapath) {
  const ids = new BackendIds(
    [...dp.services.backends.keys()].map((id) => {
      const b = dp.services.backends.get(id)!;
      return [backendKey(b.service_id, addrString(b.family, b.addr), b.port, b.protocol), id] as [string, number];
    }),
  );
  const compiler = new ServiceCompiler();
  return (services: Service[], pods = PODS) =>
    dp.services.sync(compiler.compile({ node: 'n1', services, pods, seed: 3, maxTableSize: 16381, backendIds: ids, currentTableSize: (id) => dp.services.luts.table(id)?.length }));
}
const total = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
const frontendOf = (dp: NodeDatapath, ip: string) =>
  dp.svc.lookup({ family: 4, protocol: 6, port: 80, origin: 0, nodeport: 0, addr: addrBytes(ip).addr });

describe('service sync', () => {
  it('service sync - one more service writes exactly its entries; nothing changed writes nothing; a removed one leaves no trace', () => {
    const dp = NodeDatapath.open({ objectPath: OBJECT_PATH });
    try {
      const write = writer(dp);
      const web = svc('web', 'web', '10.96.0.10', 1);
      const api = svc('api', 'api', '10.96.0.11', 2);
      expect(write([web]).writes).toEqual({ tp_backends_v1: 2, tp_lut_v1: 1, tp_svc_v1: 1 });
      expect(total(write([web]).writes) + total(write([web]).deletes)).toBe(0);
      const r = write([web, api]);
      expect(r.writes).toEqual({ tp_backends_v1: 1, tp_lut_v1: 1, tp_svc_v1: 1 });
      expect(total(r.deletes)).toBe(0);
      const gone = write([web]);
      expect(gone.deletes).toEqual({ tp_svc_v1: 1, tp_lut_v1: 1, tp_backends_v1: 1 });
      expect(frontendOf(dp, '10.96.0.11')).toBeUndefined();
      expect(dp.services.luts.ids()).toHaveLength(1);
    } finally {
      dp.close();
    }
  });

  it('service sync - a ClusterIP freed by one service and taken by another in the same change stays programmed, for the new one', () => {
    const dp = NodeDatapath.open({ objectPath: OBJECT_PATH });
    try {
      const write = writer(dp);
      write([svc('old', 'web', '10.96.0.20', 5)]);
      const r = write([svc('new', 'api', '10.96.0.20', 6)]);
      expect(frontendOf(dp, '10.96.0.20')?.service_id).toBe(6);
      expect(r.deletes.tp_svc_v1).toBe(0); // written over, never deleted
      expect(dp.services.luts.ids().map((id) => id >>> 3)).toEqual([6]);
    } finally {
      dp.close();
    }
  });

  it('service sync - a restarted agent rewrites nothing that is right, and removes what went while it was away', () => {
    ensureBpffs();
    const web = svc('web', 'web', '10.96.0.30', 7);
    const api = svc('api', 'api', '10.96.0.31', 8);
    const first = NodeDatapath.open({ objectPath: OBJECT_PATH, pinDir });
    writer(first)([web, api]);
    first.close();

    const second = NodeDatapath.open({ objectPath: OBJECT_PATH, pinDir });
    try {
      const again = writer(second)([web, api]);
      expect(total(again.writes) + total(again.deletes)).toBe(0);
    } finally {
      second.close();
    }
    const third = NodeDatapath.open({ objectPath: OBJECT_PATH, pinDir });
    try {
      const r = writer(third)([web]); // api was deleted meanwhile
      expect(total(r.writes)).toBe(0);
      expect(r.deletes).toEqual({ tp_svc_v1: 1, tp_lut_v1: 1, tp_backends_v1: 1 });
      expect(frontendOf(third, '10.96.0.31')).toBeUndefined();
    } finally {
      third.close();
    }
  });
});
