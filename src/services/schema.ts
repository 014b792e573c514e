/**
 * The normalized Service model as it travels through the store: `tcplane apply` writes
 * services `parseServiceText`/`parseServiceDocument` produced (allocations filled in
 * later), agents check each one with this schema where it arrives. A corrupt or foreign
 * value is reported and skipped, never compiled into service maps half-read: addresses
 * must parse, ports must be in range, and the rules the datapath relies on (no SCTP port
 * rewrite, a headless service has no frontend, …) must hold.
 */
import { z } from 'zod';
import { canonicalIP } from '../datapath/addr.js';
import { ipAddress } from '../store/schema.js';
import { validateDns1035Label, validateDns1123Label, validateIanaServiceName } from '../yaml/names.js';
import { syntax } from '../yaml/schema-helpers.js';
import { MAX_AFFINITY_TIMEOUT_SECONDS, SERVICE_PORT_ID_MAX, type IPFamily, type Service } from './types.js';

const portNumber = z.number().int().min(1).max(65535);
const trafficPolicy = z.enum(['Cluster', 'Local']);

/** None (headless), or an address (canonical text). */
const clusterIPEntry = z.string().transform((ip, ctx) => {
  if (ip === 'None') return ip;
  const c = canonicalIP(ip);
  if (c === undefined) {
    ctx.addIssue({ code: 'custom', message: 'not an IP address' });
    return z.NEVER;
  }
  return c;
});

const servicePort = z.strictObject({
  name: syntax(validateDns1123Label).optional(),
  protocol: z.enum(['TCP', 'UDP', 'SCTP']),
  port: portNumber,
  targetPort: z.union([portNumber, syntax(validateIanaServiceName)]),
  nodePort: portNumber.optional(),
  id: z.number().int().min(1).max(SERVICE_PORT_ID_MAX).optional(),
});

const serviceObject = z.strictObject({
  kind: z.literal('Service'),
  apiVersion: z.literal('v1'),
  namespace: syntax(validateDns1123Label),
  name: syntax(validateDns1035Label),
  type: z.enum(['ClusterIP', 'NodePort', 'LoadBalancer']),
  selector: z.record(z.string(), z.string()).refine((s) => Object.keys(s).length > 0, 'a service needs a non-empty selector'),
  // Fewer than ipFamilies until apply allocates them; one per family after.
  clusterIPs: z.array(clusterIPEntry).max(2, 'at most one cluster IP per family'),
  ipFamilies: z.array(z.enum(['IPv4', 'IPv6'])).max(2),
  ipFamilyPolicy: z.enum(['SingleStack', 'PreferDualStack', 'RequireDualStack']).optional(),
  ports: z.array(servicePort),
  externalIPs: z.array(ipAddress),
  loadBalancerIngress: z.array(ipAddress),
  sessionAffinity: z.enum(['None', 'ClientIP']),
  sessionAffinityTimeoutSeconds: z.number().int().min(0).max(MAX_AFFINITY_TIMEOUT_SECONDS),
  externalTrafficPolicy: trafficPolicy,
  internalTrafficPolicy: trafficPolicy,
  healthCheckNodePort: portNumber.optional(),
  allocateLoadBalancerNodePorts: z.boolean(),
  publishNotReadyAddresses: z.boolean(),
  source: z.strictObject({ file: z.string(), line: z.number().int().min(1) }),
});

/** The cross-field rules of the parser that the datapath depends on. */
function invariants(s: z.output<typeof serviceObject>, ctx: z.RefinementCtx) {
  const fail = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  const headless = s.clusterIPs[0] === 'None';
  if (new Set(s.ipFamilies).size !== s.ipFamilies.length) fail(['ipFamilies'], 'a family is listed twice');
  if (s.ipFamilyPolicy === 'SingleStack' && s.ipFamilies.length > 1) fail(['ipFamilies'], 'a SingleStack service has one family');
  if (headless && s.clusterIPs.length > 1) fail(['clusterIPs'], 'None (headless) is the only entry when given');
  if (!headless) {
    s.clusterIPs.forEach((ip, i) => {
      const want = s.ipFamilies[i];
      if (want === undefined) fail(['clusterIPs', i], `${ip} has no family in ipFamilies`);
      else if (familyOfAddress(ip) !== want) fail(['clusterIPs', i], `${ip} is not ${want} (ipFamilies[${i}])`);
    });
  }
  if (headless && s.type !== 'ClusterIP') fail(['clusterIPs', 0], 'a headless service must be of type ClusterIP');
  if (s.ports.length === 0 && !headless) fail(['ports'], 'only a headless service may have no ports');
  const seen = new Set<string>();
  s.ports.forEach((p, i) => {
    const key = `${p.port}/${p.protocol}`;
    if (seen.has(key)) fail(['ports', i], `duplicate port ${key}`);
    seen.add(key);
    if (p.nodePort !== undefined && s.type === 'ClusterIP') fail(['ports', i, 'nodePort'], 'a ClusterIP service has no node ports');
    if (!headless && p.protocol === 'SCTP' && p.targetPort !== p.port) fail(['ports', i, 'targetPort'], 'an SCTP port cannot be rewritten');
    if (p.protocol === 'SCTP' && p.nodePort !== undefined) fail(['ports', i, 'nodePort'], 'an SCTP port cannot have a node port (it cannot be rewritten)');
  });
  if (headless && s.externalIPs.length > 0) fail(['externalIPs'], 'a headless service has no external IPs');
  if (s.loadBalancerIngress.length > 0 && s.type !== 'LoadBalancer') {
    fail(['loadBalancerIngress'], 'only a LoadBalancer service has load balancer ingress');
  }
  if (s.sessionAffinity === 'None' ? s.sessionAffinityTimeoutSeconds !== 0 : s.sessionAffinityTimeoutSeconds < 1) {
    fail(['sessionAffinityTimeoutSeconds'], 'must be 0 without session affinity and 1 or more with ClientIP');
  }
  if (s.healthCheckNodePort !== undefined && (s.type !== 'LoadBalancer' || s.externalTrafficPolicy !== 'Local')) {
    fail(['healthCheckNodePort'], 'only a LoadBalancer service with externalTrafficPolicy Local has a health check node port');
  }
}

export const serviceSchema: z.ZodType<Service> = serviceObject.superRefine(invariants);

/** IPv4 or IPv6, by the address's text (a valid address). */
export const familyOfAddress = (ip: string): IPFamily => (ip.includes(':') ? 'IPv6' : 'IPv4');
