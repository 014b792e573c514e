// What apply -f reads: multi-document files mixing every kind, every error located.
import { describe, expect, it } from 'vitest';
import { parseManifestText } from '../../src/cli/manifest.js';
import { LocatedErrors } from '../../src/yaml/located.js';

const NP = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: x}
spec:
  podSelector: {}
`;
const SVC = `apiVersion: v1
kind: Service
metadata: {name: web, namespace: x}
spec:
  selector: {app: web}
  ports: [{port: 80}]
`;

function errorsOf(text: string): string[] {
  try {
    parseManifestText(text, 'f.yaml');
  } catch (err) {
    if (err instanceof LocatedErrors) return err.errors.map((e) => e.message);
    throw err;
  }
  return [];
}

describe('manifest', () => {
  it('manifest - policies and services in one file each go to their parser', () => {
    const docs = parseManifestText(`${NP}---\n${SVC}`, 'f.yaml');
    expect(docs.map((d) => [d.kind, d.doc.kind, d.doc.name, d.located.line])).toEqual([
      ['policy', 'NetworkPolicy', 'deny', 1],
      ['service', 'Service', 'web', 7],
    ]);
  });

  it('manifest - errors of both kinds and unknown kinds come together, by line, and nothing is returned', () => {
    const bad = `${NP.replace('podSelector: {}', 'podSelector: {}\n  egress: [{to: [{ipBlock: {cidr: 10.0.0.0/8, except: [192.168.0.0/16]}}]}]')}---\n${SVC.replace('port: 80', 'port: 99999')}---\nkind: Deployment\n---\nkind: AdminNetworkPolicy\napiVersion: policy.networking.k8s.io/v1alpha1\nmetadata: {name: a}\nspec: {priority: 2000, subject: {namespaces: {}}}\n`;
    expect(errorsOf(bad)).toEqual([
      'f.yaml:6: spec.egress[0].to[0].ipBlock.except[0]: 192.168.0.0/16 is not strictly inside cidr 10.0.0.0/8',
      'f.yaml:13: spec.ports[0].port: must be an integer from 1 to 65535, got 99999',
      'f.yaml:15: kind: unknown kind Deployment (supported: NetworkPolicy, ClusterNetworkPolicy, AdminNetworkPolicy, BaselineAdminNetworkPolicy, Service)',
      'f.yaml:20: spec.priority: must be an integer from 0 to 1000, got 2000',
    ]);
  });
});
