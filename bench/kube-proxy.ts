/**
 * kube-proxy's rules for ClusterIP services, written out as kube-proxy writes them, so
 * benchmarks can put tcplane beside the iptables and nftables modes in the same lab.
 * Our own generator, after the layout of kubernetes pkg/proxy/iptables/proxier.go and
 * pkg/proxy/nftables/proxier.go (1.31): only the chains a ClusterIP connection from a pod
 * crosses, plus the fixed chains every sync writes; no NodePorts, no health checks.
 *
 * iptables (loaded with `iptables-restore --noflush`, as kube-proxy syncs; the jumps from
 * the built-in chains are made once, as kube-proxy's EnsureRule does):
 *   nat PREROUTING/OUTPUT → KUBE-SERVICES: one rule per ClusterIP:port → KUBE-SVC-<hash>:
 *   `! -s <cluster CIDR> -j KUBE-MARK-MASQ`, then one rule per endpoint, `-m statistic
 *   --mode random --probability 1/(n-i)` but the last → KUBE-SEP-<hash>: `-s <endpoint>
 *   -j KUBE-MARK-MASQ` (hairpin), DNAT. POSTROUTING → KUBE-POSTROUTING masquerades what
 *   KUBE-MARK-MASQ marked (0x4000). filter FORWARD → KUBE-FORWARD etc. Above 1,000
 *   endpoints kube-proxy drops the per-rule comments of KUBE-SVC/KUBE-SEP ("large cluster
 *   mode"); so does this.
 * nftables (table ip kube-proxy, loaded with `nft -f`):
 *   nat-prerouting/nat-output → services: `ip daddr . meta l4proto . th dport vmap
 *   @service-ips` → service-<hash>-<ns>/<name>/tcp/<port>: masquerade mark for sources
 *   outside the cluster CIDR, `numgen random mod n vmap {i : goto endpoint-…}` →
 *   endpoint-<hash>-…__<ip>/<port>: hairpin mark, `dnat to`. nat-postrouting →
 *   masquerading; filter-forward checks for services without endpoints and for unused
 *   ClusterIP ports, as kube-proxy does.
 */
import { createHash } from 'node:crypto';

export interface EmulatedService {
  namespace: string;
  name: string;
  portName: string;
  clusterIP: string;
  port: number;
  endpoints: { ip: string; port: number }[];
}

const MASQ_MARK = '0x4000';
/** kube-proxy's largeClusterEndpointsThreshold. */
const LARGE_CLUSTER_ENDPOINTS = 1000;

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
/** RFC 4648 base32 of sha256(s), as Go's base32.StdEncoding, truncated. */
function hash(s: string, chars: number): string {
  const bytes = createHash('sha256').update(s).digest();
  let out = '';
  let bits = 0;
  let acc = 0;
  for (const b of bytes) {
    acc = (acc << 8) | b;
    bits += 8;
    while (bits >= 5 && out.length < chars) {
      out += B32[(acc >>> (bits - 5)) & 31];
      bits -= 5;
    }
    acc &= (1 << bits) - 1;
  }
  return out.slice(0, chars);
}

const portName = (s: EmulatedService) => `${s.namespace}/${s.name}:${s.portName}`;
export const svcChain = (s: EmulatedService) => `KUBE-SVC-${hash(`${portName(s)}tcp`, 16)}`;
const sepChain = (s: EmulatedService, ep: { ip: string; port: number }) => `KUBE-SEP-${hash(`${portName(s)}tcp${ep.ip}:${ep.port}`, 16)}`;

/** The jumps from the built-in chains, as `iptables` argument vectors (made once, before any restore). */
export function iptablesJumps(): string[][] {
  const c = (s: string) => ['-m', 'comment', '--comment', s];
  return [
    ['-t', 'filter', '-N', 'KUBE-EXTERNAL-SERVICES'],
    ['-t', 'filter', '-N', 'KUBE-NODEPORTS'],
    ['-t', 'filter', '-N', 'KUBE-SERVICES'],
    ['-t', 'filter', '-N', 'KUBE-FORWARD'],
    ['-t', 'filter', '-N', 'KUBE-PROXY-FIREWALL'],
    ['-t', 'nat', '-N', 'KUBE-SERVICES'],
    ['-t', 'nat', '-N', 'KUBE-POSTROUTING'],
    ['-t', 'filter', '-I', 'INPUT', '-m', 'conntrack', '--ctstate', 'NEW', ...c('kubernetes load balancer firewall'), '-j', 'KUBE-PROXY-FIREWALL'],
    ['-t', 'filter', '-I', 'INPUT', ...c('kubernetes health check service ports'), '-j', 'KUBE-NODEPORTS'],
    ['-t', 'filter', '-I', 'INPUT', '-m', 'conntrack', '--ctstate', 'NEW', ...c('kubernetes externally-visible service portals'), '-j', 'KUBE-EXTERNAL-SERVICES'],
    ['-t', 'filter', '-I', 'FORWARD', '-m', 'conntrack', '--ctstate', 'NEW', ...c('kubernetes load balancer firewall'), '-j', 'KUBE-PROXY-FIREWALL'],
    ['-t', 'filter', '-I', 'FORWARD', ...c('kubernetes forwarding rules'), '-j', 'KUBE-FORWARD'],
    ['-t', 'filter', '-I', 'FORWARD', '-m', 'conntrack', '--ctstate', 'NEW', ...c('kubernetes service portals'), '-j', 'KUBE-SERVICES'],
    ['-t', 'filter', '-I', 'FORWARD', '-m', 'conntrack', '--ctstate', 'NEW', ...c('kubernetes externally-visible service portals'), '-j', 'KUBE-EXTERNAL-SERVICES'],
    ['-t', 'filter', '-I', 'OUTPUT', '-m', 'conntrack', '--ctstate', 'NEW', ...c('kubernetes load balancer firewall'), '-j', 'KUBE-PROXY-FIREWALL'],
    ['-t', 'filter', '-I', 'OUTPUT', '-m', 'conntrack', '--ctstate', 'NEW', ...c('kubernetes service portals'), '-j', 'KUBE-SERVICES'],
    ['-t', 'nat', '-I', 'OUTPUT', ...c('kubernetes service portals'), '-j', 'KUBE-SERVICES'],
    ['-t', 'nat', '-I', 'PREROUTING', ...c('kubernetes service portals'), '-j', 'KUBE-SERVICES'],
    ['-t', 'nat', '-I', 'POSTROUTING', ...c('kubernetes postrouting rules'), '-j', 'KUBE-POSTROUTING'],
  ];
}

/** The whole `iptables-restore --noflush` input of one kube-proxy sync. */
export function iptablesRestore(services: readonly EmulatedService[], clusterCIDR: string): string {
  const large = services.reduce((n, s) => n + s.endpoints.length, 0) > LARGE_CLUSTER_ENDPOINTS;
  const q = (s: string) => (s.includes(' ') ? `"${s}"` : s);
  const comment = (s: string) => (large ? '' : ` -m comment --comment ${q(s)}`);
  const filter = [
    '*filter',
    ':KUBE-NODEPORTS - [0:0]',
    ':KUBE-SERVICES - [0:0]',
    ':KUBE-EXTERNAL-SERVICES - [0:0]',
    ':KUBE-FORWARD - [0:0]',
    ':KUBE-PROXY-FIREWALL - [0:0]',
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
    `-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark ${MASQ_MARK}/${MASQ_MARK} -j ACCEPT`,
    '-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
    'COMMIT',
  ];
  const chains = [':KUBE-SERVICES - [0:0]', ':KUBE-NODEPORTS - [0:0]', ':KUBE-POSTROUTING - [0:0]', ':KUBE-MARK-MASQ - [0:0]'];
  const rules = [
    `-A KUBE-POSTROUTING -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`,
    `-A KUBE-POSTROUTING -j MARK --xor-mark ${MASQ_MARK}`,
    '-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE --random-fully',
    `-A KUBE-MARK-MASQ -j MARK --or-mark ${MASQ_MARK}`,
  ];
  for (const s of services) {
    const svc = svcChain(s);
    const dst = `-m tcp -p tcp -d ${s.clusterIP}/32 --dport ${s.port}`;
    chains.push(`:${svc} - [0:0]`);
    rules.push(`-A KUBE-SERVICES -m comment --comment "${portName(s)} cluster IP" ${dst} -j ${svc}`);
    rules.push(`-A ${svc}${comment(`${portName(s)} cluster IP`)} ${dst} ! -s ${clusterCIDR} -j KUBE-MARK-MASQ`);
    const n = s.endpoints.length;
    s.endpoints.forEach((ep, i) => {
      const sep = sepChain(s, ep);
      chains.push(`:${sep} - [0:0]`);
      const stat = i < n - 1 ? ` -m statistic --mode random --probability ${(1 / (n - i)).toFixed(10)}` : '';
      rules.push(`-A ${svc}${comment(`${portName(s)} -> ${ep.ip}:${ep.port}`)}${stat} -j ${sep}`);
      rules.push(`-A ${sep}${comment(portName(s))} -s ${ep.ip}/32 -j KUBE-MARK-MASQ`);
      rules.push(`-A ${sep}${comment(portName(s))} -m tcp -p tcp -j DNAT --to-destination ${ep.ip}:${ep.port}`);
    });
  }
  rules.push('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS');
  return [...filter, '*nat', ...chains, ...rules, 'COMMIT', ''].join('\n');
}

const nftPortName = (s: EmulatedService) => `${s.namespace}/${s.name}/tcp/${s.portName}`;
const nftSvcChain = (s: EmulatedService) => `service-${hash(nftPortName(s), 8)}-${nftPortName(s)}`;
const nftEpChain = (s: EmulatedService, ep: { ip: string; port: number }) => {
  const name = `${nftPortName(s)}__${ep.ip}/${ep.port}`;
  return `endpoint-${hash(name, 8)}-${name}`;
};

/** The `nft -f` input that creates table ip kube-proxy as kube-proxy's nftables mode leaves it. */
export function nftRuleset(services: readonly EmulatedService[], clusterCIDR: string, serviceCIDR: string): string {
  const out = [
    'add table ip kube-proxy { comment "rules for kube-proxy" ; }',
    'add chain ip kube-proxy mark-for-masquerade',
    `add rule ip kube-proxy mark-for-masquerade mark set mark or ${MASQ_MARK}`,
    'add chain ip kube-proxy masquerading',
    `add rule ip kube-proxy masquerading mark and ${MASQ_MARK} == 0 return`,
    `add rule ip kube-proxy masquerading mark set mark xor ${MASQ_MARK}`,
    'add rule ip kube-proxy masquerading masquerade fully-random',
    'add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }',
    'add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }',
    'add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }',
    'add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }',
    'add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }',
    'add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }',
    'add chain ip kube-proxy services',
    'add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips',
    'add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports',
    'add chain ip kube-proxy service-endpoints-check',
    'add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services',
    'add chain ip kube-proxy cluster-ips-check',
    'add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"',
    `add rule ip kube-proxy cluster-ips-check ip daddr ${serviceCIDR} drop comment "Drop traffic to unallocated ClusterIPs"`,
    'add chain ip kube-proxy firewall-check',
    'add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips',
    'add chain ip kube-proxy filter-prerouting { type filter hook prerouting priority -110 ; }',
    'add rule ip kube-proxy filter-prerouting ct state new jump firewall-check',
    'add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }',
    'add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check',
    'add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check',
    'add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }',
    'add rule ip kube-proxy nat-prerouting jump services',
    'add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }',
    'add rule ip kube-proxy nat-output jump services',
    'add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }',
    'add rule ip kube-proxy nat-postrouting jump masquerading',
  ];
  for (const s of services) out.push(...nftService(s, clusterCIDR));
  return `${out.join('\n')}\n`;
}

/** One service's chains, rules and map elements: what kube-proxy's nftables mode adds (in one transaction) for a new service. */
export function nftService(s: EmulatedService, clusterCIDR: string): string[] {
  const out: string[] = [];
  const svc = nftSvcChain(s);
  const eps = s.endpoints.map((ep) => ({ ep, chain: nftEpChain(s, ep) }));
  for (const { ep, chain } of eps) {
    out.push(`add chain ip kube-proxy ${chain}`);
    out.push(`add rule ip kube-proxy ${chain} ip saddr ${ep.ip} jump mark-for-masquerade`);
    out.push(`add rule ip kube-proxy ${chain} meta l4proto tcp dnat to ${ep.ip}:${ep.port}`);
  }
  out.push(`add chain ip kube-proxy ${svc}`);
  out.push(`add rule ip kube-proxy ${svc} ip daddr ${s.clusterIP} tcp dport ${s.port} ip saddr != ${clusterCIDR} jump mark-for-masquerade`);
  out.push(`add rule ip kube-proxy ${svc} numgen random mod ${eps.length} vmap { ${eps.map((e, i) => `${i} : goto ${e.chain}`).join(' , ')} }`);
  out.push(`add element ip kube-proxy cluster-ips { ${s.clusterIP} }`);
  out.push(`add element ip kube-proxy service-ips { ${s.clusterIP} . tcp . ${s.port} : goto ${svc} }`);
  return out;
}
