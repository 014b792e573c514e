// Address classes (src/policy/address-classes.ts): which addresses get identities of
// their own, with which flags, and that the numbers are the same for the same cluster.
import { describe, expect, it } from 'vitest';
import { IDENTITY } from '../../src/datapath/constants.js';
import { addressClasses, type AddressClassInput } from '../../src/policy/address-classes.js';
import { netpol } from '../helpers/cluster.js';

const peers = (...cidrs: [string, string[]][]) => cidrs.map(([cidr, except]) => ({ ipBlock: { cidr, except } }));
const POD_A = 300;
const INPUT: AddressClassInput = {
  policies: [
    netpol('x', 'blocks', { ingress: [{ from: peers(['10.244.2.0/24', ['10.244.2.12/32']], ['0.0.0.0/0', ['10.244.0.0/16']]) }] }),
    netpol('x', 'named', { policyTypes: ['Egress'], egress: [{ ports: [{ protocol: 'TCP', port: 'web' }] }] }),
  ],
  pods: [
    { ips: ['10.244.2.12'], identity: POD_A, ports: [{ name: 'web', port: 80, protocol: 'TCP' }] },
    { ips: ['10.244.2.13'], identity: POD_A, ports: [{ name: 'web', port: 8080, protocol: 'TCP' }] },
    { ips: ['10.244.2.14'], identity: POD_A, ports: [{ name: 'web', port: 8080, protocol: 'TCP' }] },
    { ips: ['10.244.9.1'], identity: 301 }, // a pod outside the known pod ranges, inside 10.244.0.0/16
    { ips: ['fd00::1'], identity: 302 }, // in no prefix, no named port: keeps its label identity
  ],
  nodes: [{ addresses: ['10.250.0.11'], podCIDRs: ['10.244.2.0/24'] }],
};

describe('address classes', () => {
  it('address classes - pods an ipBlock or an egress named port tells apart get classes of their own, twins with the same prefix and numbers share one', () => {
    const c = addressClasses(INPUT);
    const [a12, a13, a14] = ['10.244.2.12', '10.244.2.13', '10.244.2.14'].map((ip) => c.podAddress(ip, POD_A));
    expect(a12).not.toBe(a13); // excepted and not: other prefixes; other numbers for "web" too
    expect(a13).toBe(a14);
    expect(c.podAddress('fd00::1', 302)).toBe(302);
    for (const id of [a12!, a13!, c.podAddress('10.244.9.1', 301)]) {
      expect(id & IDENTITY.LOCAL).toBe(IDENTITY.LOCAL);
      expect(id & IDENTITY.LOCAL_IN_PODS).toBe(IDENTITY.LOCAL_IN_PODS);
    }
    // Every address of POD_A has a class: selecting its labels means its classes, and no entry for POD_A itself.
    expect(c.withDerived(new Set([POD_A]))).toEqual(new Set([a12, a13]));
    // 302's address keeps its label identity.
    expect(c.withDerived(new Set([302]))).toEqual(new Set([302]));
    expect(c.inBlock({ cidr: '10.244.2.0/24', except: ['10.244.2.12/32'] }).has(a13!)).toBe(true);
    expect(c.inBlock({ cidr: '10.244.2.0/24', except: ['10.244.2.12/32'] }).has(a12!)).toBe(false);
    expect(c.namedPort('web', 'TCP')).toEqual(
      new Map([
        [80, new Set([a12])],
        [8080, new Set([a13])],
      ]),
    );
  });

  it("address classes - a node's address in a policy prefix gets a node class; the LPM holds every prefix, pod ranges as unmanaged classes, the rest as world classes", () => {
    const c = addressClasses(INPUT);
    const node = c.nodeAddress('10.250.0.11');
    expect(node & (IDENTITY.LOCAL | IDENTITY.LOCAL_NODE)).toBe(IDENTITY.LOCAL | IDENTITY.LOCAL_NODE);
    expect(c.inBlock({ cidr: '0.0.0.0/0', except: ['10.244.0.0/16'] }).has(node)).toBe(true);
    const lpm = new Map(c.prefixes.map((p) => [p.cidr, p.identity]));
    expect([...lpm.keys()].sort()).toEqual(['0.0.0.0/0', '10.244.0.0/16', '10.244.2.0/24', '10.244.2.12/32']);
    expect(lpm.get('10.244.2.0/24')! & IDENTITY.LOCAL_IN_PODS).toBe(IDENTITY.LOCAL_IN_PODS);
    expect(lpm.get('10.244.0.0/16')! & IDENTITY.LOCAL_IN_PODS).toBe(0); // holds pod ranges, is none: outside them
    expect(lpm.get('0.0.0.0/0')! & IDENTITY.LOCAL_IN_PODS).toBe(0);
  });

  it('address classes - without ipBlocks or egress named ports every address keeps its identity and the LPM holds the pod ranges as reserved:unmanaged', () => {
    const c = addressClasses({ ...INPUT, policies: [] });
    expect(c.podAddress('10.244.2.12', POD_A)).toBe(POD_A);
    expect(c.nodeAddress('10.250.0.11')).toBe(IDENTITY.REMOTE_NODE);
    expect(c.prefixes).toEqual([{ cidr: '10.244.2.0/24', identity: IDENTITY.UNMANAGED }]);
  });

  it('address classes - the same cluster gives the same numbers, whatever the order of its pods and policies', () => {
    const a = addressClasses(INPUT);
    const b = addressClasses({ ...INPUT, pods: [...INPUT.pods].reverse(), policies: [...INPUT.policies].reverse() });
    for (const p of INPUT.pods) for (const ip of p.ips) expect(b.podAddress(ip, p.identity)).toBe(a.podAddress(ip, p.identity));
    expect(new Map(b.prefixes.map((p) => [p.cidr, p.identity]))).toEqual(new Map(a.prefixes.map((p) => [p.cidr, p.identity])));
  });
});
