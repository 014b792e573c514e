/**
 * The normalized Service model: what the service parser returns, what `tcplane apply`
 * stores (with allocations filled in) and what agents compile into the datapath's
 * service maps. Every default Kubernetes applies (`v1` Service) is applied here, so a
 * consumer never has to know how the user spelled a document.
 *
 * Supported: `selector`; `ports` (name, protocol TCP/UDP/SCTP, port, targetPort by
 * number or by the pod's port name, nodePort); `type` ClusterIP, NodePort and
 * LoadBalancer; `clusterIP`/`clusterIPs` (IPv4 and/or IPv6, or `None` for headless);
 * `ipFamilies` and `ipFamilyPolicy` (SingleStack, PreferDualStack, RequireDualStack);
 * `externalIPs`; `status.loadBalancer.ingress[].ip`; `sessionAffinity` with its timeout;
 * `externalTrafficPolicy`, `internalTrafficPolicy`, `healthCheckNodePort`,
 * `allocateLoadBalancerNodePorts`, `publishNotReadyAddresses`.
 */

export type ServiceProtocol = 'TCP' | 'UDP' | 'SCTP';
export type ServiceType = 'ClusterIP' | 'NodePort' | 'LoadBalancer';
export type TrafficPolicy = 'Cluster' | 'Local';
export type SessionAffinity = 'None' | 'ClientIP';
export type IPFamily = 'IPv4' | 'IPv6';
export type IPFamilyPolicy = 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';

/** Where a document starts: `file` as the user named it, 1-based `line`. */
export interface ServiceSource {
  file: string;
  line: number;
}

/** One port of a service. `appProtocol` is checked and dropped: the datapath has no use for it. */
export interface ServicePort {
  /** A DNS-1123 label; required (and unique) when the service has more than one port, else optional. */
  name?: string;
  protocol: ServiceProtocol;
  port: number;
  /**
   * The pods' port: a number, or the name of a container port, resolved against each
   * pod (a pod without a port of that name and protocol is no backend for this port).
   * Defaults to `port` (Kubernetes reads 0 and "" as unset too). Always `port` for SCTP
   * unless headless: tcplane cannot rewrite an SCTP port.
   */
  targetPort: number | string;
  /**
   * NodePort and LoadBalancer (unless allocateLoadBalancerNodePorts is false): the
   * port on every node's addresses. Given by the user, or undefined until `apply`
   * allocates one; always set in a stored service that needs one.
   */
  nodePort?: number;
  /**
   * The service port's cluster-wide id, allocated by `apply` like a nodePort (the
   * datapath's reverse-NAT index and session-affinity key; every node uses the same).
   * Always set in a stored service.
   */
  id?: number;
}

export interface Service {
  kind: 'Service';
  apiVersion: 'v1';
  /** metadata.namespace, "default" when omitted (as kubectl does). */
  namespace: string;
  name: string;
  type: ServiceType;
  /** Pods whose labels include every pair are the backends (in the service's namespace). */
  selector: Record<string, string>;
  /**
   * The cluster addresses: as given (clusterIP and clusterIPs, merged), `['None']` for
   * a headless service (no translation at all), or fewer than ipFamilies until `apply`
   * allocates the rest, one per family from that family's service range. In a stored
   * service: one address per family of ipFamilies, in that order (or None).
   */
  clusterIPs: string[];
  /**
   * The service's families, the first one primary. As given, or read from the given
   * clusterIPs, or `[]` until `apply` decides them from the policy and the cluster's
   * families (as Kubernetes does); never empty in a stored service.
   */
  ipFamilies: IPFamily[];
  /**
   * As given; unset, RequireDualStack when two families or cluster IPs are given (as
   * Kubernetes defaults it), else left unset by the parser: `apply` adopts the stored
   * service's on an update and takes SingleStack on a create, so a stored service always
   * has one. PreferDualStack gets one family on a single-stack cluster; RequireDualStack
   * is refused there.
   */
  ipFamilyPolicy?: IPFamilyPolicy;
  /** At least one, except for a headless service (which may have none). */
  ports: ServicePort[];
  /** Further frontends: traffic to these addresses on `port` is translated like the ClusterIP's (external traffic). */
  externalIPs: string[];
  /** status.loadBalancer.ingress[].ip (ipMode VIP): frontends as externalIPs are; LoadBalancer only. */
  loadBalancerIngress: string[];
  sessionAffinity: SessionAffinity;
  /** sessionAffinityConfig.clientIP.timeoutSeconds; 10800 (3 h) by default; 0 without affinity. */
  sessionAffinityTimeoutSeconds: number;
  /**
   * For external traffic (NodePort, externalIPs, load balancer IPs); Cluster by default.
   * Also Cluster where no external traffic can arrive (a ClusterIP service without
   * externalIPs), where Kubernetes leaves it unset.
   */
  externalTrafficPolicy: TrafficPolicy;
  /** For traffic from pods to the ClusterIP; Cluster by default. */
  internalTrafficPolicy: TrafficPolicy;
  /**
   * LoadBalancer with externalTrafficPolicy Local: the node port on which the agent
   * answers kube-proxy's health check. Given, or undefined until allocated.
   */
  healthCheckNodePort?: number;
  /** LoadBalancer only: false = no nodePorts are allocated (default true; true for other types). */
  allocateLoadBalancerNodePorts: boolean;
  /** Not-ready pods are backends too (default false). */
  publishNotReadyAddresses: boolean;
  /** Where the document starts. */
  source: ServiceSource;
}

export const DEFAULT_AFFINITY_TIMEOUT_SECONDS = 10800;
/** Service port ids fit 24 bits: table ids add 3 bits below them (services/compile.ts). */
export const SERVICE_PORT_ID_MAX = (1 << 24) - 1;
export const MAX_AFFINITY_TIMEOUT_SECONDS = 86400;
