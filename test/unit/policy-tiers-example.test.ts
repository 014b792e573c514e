// The README's worked example of the tiers, checked against the independent model: the
// demo's shop (labs/demo.yaml), its NetworkPolicies (policies/*.yaml) and the cluster
// policies of policies/cluster/shop-tiers.yaml.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parsePolicyText } from '../../src/policy/parse.js';
import { MatrixLab } from '../helpers/matrix-lab.js';
import { PolicyModel } from '../helpers/model.js';
import { ROOT } from '../helpers/paths.js';

const read = (dir: string) =>
  readdirSync(`${ROOT}${dir}`)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parsePolicyText(readFileSync(`${ROOT}${dir}/${f}`, 'utf8'), `${dir}/${f}`));

describe('policy tiers - the README example', () => {
  it('policy tiers - every row of the worked example is what the model says', () => {
    const lab = new MatrixLab('labs/demo.yaml');
    const model = new PolicyModel({ ...lab.cluster, policies: [...read('policies'), ...read('policies/cluster')] });
    const reach = (from: string, to: string, port: number) => model.reachable(lab.podOf(from), lab.podOf(to), 'TCP', port);
    expect(reach('tools/monitor', 'shop/api', 9100)).toBe(true); // Admin Accept
    expect(reach('shop/web', 'shop/api', 8080)).toBe(true); // Pass → NetworkPolicy allows
    expect(reach('shop/db', 'shop/api', 8080)).toBe(false); // Pass → NetworkPolicy isolates
    expect(reach('tools/monitor', 'shop/api', 8080)).toBe(false); // Admin Deny over a NetworkPolicy allow
    expect(reach('shop/web', 'tools/monitor', 9100)).toBe(false); // Baseline Deny
    expect(reach('tools/monitor', 'tools/monitor', 9100)).toBe(true); // a pod reaches itself
    // Without the cluster policies, the NetworkPolicies alone decide those rows otherwise.
    const npOnly = new PolicyModel({ ...lab.cluster, policies: read('policies') });
    expect(npOnly.reachable(lab.podOf('tools/monitor'), lab.podOf('shop/api'), 'TCP', 8080)).toBe(true);
    expect(npOnly.reachable(lab.podOf('shop/web'), lab.podOf('tools/monitor'), 'TCP', 9100)).toBe(true);
  });
});
