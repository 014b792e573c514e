/**
 * Reachability matrices in a lab, judged by the independent model: the harness of the
 * end-to-end policy suites on the Kubernetes e2e layout (labs/netpol-e2e.yaml). A case
 * applies its policy documents with the CLI (and changes labels at run time if it says
 * so), probes every pod → every pod on every port in both families, requires the matrix
 * PolicyModel.reachable gives, and deletes what it applied (also when it fails).
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { parseLabSpec, type LabPlan } from '../../src/lab/spec.js';
import { parsePolicyText } from '../../src/policy/parse.js';
import { tcplane, type ProbeRow } from './cli.js';
import { PolicyModel, type ModelCluster, type ModelPod } from './model.js';
import { ROOT } from './paths.js';

export type LabelChange = ['pod' | 'namespace', string, Record<string, string>];

export interface MatrixCase {
  name: string;
  /** Policy documents, any kind. */
  policies: string;
  /** Labels set at run time after the policies are in. */
  labels?: LabelChange[];
}

export class MatrixLab {
  readonly plan: LabPlan;
  /** The cluster as the model sees it; labels change with the cases. */
  readonly cluster: ModelCluster;

  constructor(readonly labFile: string) {
    this.plan = parseLabSpec(readFileSync(`${ROOT}${labFile}`, 'utf8'), labFile);
    this.cluster = {
      localNode: 'none', // reachability is end to end: no node's own addresses are involved
      nodes: this.plan.nodes.map((n) => ({ name: n.name, addresses: n.underlayIPs, podCIDRs: n.podCIDRs, labels: { ...n.labels } })),
      namespaces: this.plan.namespaces.map((n) => ({ name: n.name, labels: { ...n.labels } })),
      pods: this.plan.pods.map((p): ModelPod => ({ namespace: p.namespace, name: p.name, labels: { ...p.labels }, ips: [...p.ips], node: p.node, ports: p.ports.map((q) => ({ ...q })) })),
      policies: [],
    };
  }

  ip = (key: string) => this.plan.pods.find((p) => p.key === key)!.ip;
  ip6 = (key: string) => this.plan.pods.find((p) => p.key === key)!.ips[1]!;
  podCidr = (node: string) => this.plan.nodes.find((n) => n.name === node)!.podCIDR;
  podCidr6 = (node: string) => this.plan.nodes.find((n) => n.name === node)!.podCIDRs[1]!;
  podOf = (key: string) => this.cluster.pods.find((p) => `${p.namespace}/${p.name}` === key)!;

  async up(): Promise<void> {
    await tcplane(['lab', 'down']);
    await cli('lab', 'up', '-f', this.labFile);
  }

  async down(): Promise<void> {
    await tcplane(['lab', 'down']);
  }

  /** Probes until the matrix is what the model says (labels take a moment to travel), at most 4 times. */
  async expectModelMatrix(model: PolicyModel): Promise<ProbeRow[]> {
    const want = (r: ProbeRow) => model.reachable(this.podOf(r.from), this.podOf(r.to), r.protocol, r.port, r.family);
    let rows: ProbeRow[] = [];
    for (let attempt = 0; attempt < 4; attempt++) {
      rows = await probe();
      if (rows.every((r) => r.connected === want(r))) break;
      await sleep(250);
    }
    expect(show(rows, (r) => r.connected)).toEqual(show(rows, want));
    return rows;
  }

  /** The matrix with no policy at all. */
  expectOpen(): Promise<ProbeRow[]> {
    return this.expectModelMatrix(new PolicyModel(this.cluster));
  }

  /** Applies a case, checks its matrix, undoes it. */
  async runCase(c: MatrixCase): Promise<ProbeRow[]> {
    const file = join(tmpdir(), `tp-matrix-${process.pid}.yaml`);
    writeFileSync(file, c.policies);
    try {
      await cli('apply', '-f', file, '--wait');
      if (c.labels) await this.setLabels(c.labels, false);
      const policies = parsePolicyText(c.policies, file);
      return await this.expectModelMatrix(new PolicyModel({ ...this.cluster, policies }));
    } finally {
      if (c.labels) await this.setLabels(c.labels, true);
      await cli('delete', '-f', file, '--wait');
      rmSync(file, { force: true });
    }
  }

  private async setLabels(changes: LabelChange[], undo: boolean): Promise<void> {
    for (const [kind, target, labels] of changes) {
      const set = Object.entries(labels).map(([k, v]) => (undo ? `${k}-` : `${k}=${v}`));
      await cli('lab', 'label', kind, target, ...set);
      const held = kind === 'pod' ? this.podOf(target).labels : this.cluster.namespaces.find((n) => n.name === target)!.labels;
      for (const [k, v] of Object.entries(labels)) {
        if (undo) delete held[k];
        else held[k] = v;
      }
    }
  }
}

export async function cli(...args: string[]) {
  const r = await tcplane(args);
  expect(r.code, `tcplane ${args.join(' ')}: ${r.stderr}`).toBe(0);
  return r;
}

async function probe(): Promise<ProbeRow[]> {
  const r = await cli('lab', 'probe', '--json', '--timeout-ms', '500');
  return JSON.parse(r.stdout) as ProbeRow[];
}

const show = (rows: ProbeRow[], f: (r: ProbeRow) => boolean) =>
  rows.map((r) => `${r.from} → ${r.to} ${r.port}/${r.protocol} IPv${r.family}: ${f(r) ? 'connected' : 'blocked'}`);
