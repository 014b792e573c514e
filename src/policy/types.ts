/**
 * The normalized policy model: what `parsePolicyText` returns and what the agent compiles
 * into BPF map entries. Every default Kubernetes applies is already applied here, so a
 * consumer never has to know how the user spelled a document.
 *
 * NetworkPolicy (`networking.k8s.io/v1`) in full: ingress and egress, matchLabels and
 * matchExpressions, ipBlock with except, numeric and named ports, port ranges, TCP, UDP
 * and SCTP. ClusterNetworkPolicy (`policy.networking.k8s.io/v1alpha2`) and the v1alpha1
 * AdminNetworkPolicy and BaselineAdminNetworkPolicy, read into one cluster-policy model.
 */

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

/** `values` is non-empty for In and NotIn, empty for Exists and DoesNotExist. */
export interface SelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values: string[];
}

/**
 * Pods (or namespaces) whose labels include every pair of `matchLabels` and meet every
 * requirement of `matchExpressions` (NotIn and DoesNotExist are met by a missing key);
 * `{}` selects everything.
 */
export interface LabelSelector {
  matchLabels: Record<string, string>;
  matchExpressions: SelectorRequirement[];
}

/**
 * Addresses: those in `cidr` and in none of `except` (each strictly inside cidr), of
 * cidr's family only. Text is canonical (host bits cleared, IPv6 in its shortest form).
 * It matches every address it covers, a pod's too: one pod's address, not the pods that
 * share its labels.
 */
export interface IpBlock {
  cidr: string;
  except: string[];
}

/**
 * A peer of traffic: either `ipBlock` alone, or at least one selector. Only
 * `podSelector`: pods of the policy's own namespace. Only `namespaceSelector`: every pod
 * of the selected namespaces. Both: pods matching `podSelector` in the namespaces
 * `namespaceSelector` selects.
 */
export interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: IpBlock;
}

export type PolicyProtocol = 'TCP' | 'UDP' | 'SCTP';

/** A port a pod declares (its containers' ports): what named ports in rules resolve against. */
export interface DeclaredPort {
  name?: string;
  port: number;
  protocol: PolicyProtocol;
}

/**
 * `port` undefined = every port of that protocol; a string names a port of the
 * destination pod (matched by name and protocol: a pod without it is not matched);
 * `endPort`: the range port…endPort (port is then a number).
 */
export interface PolicyPort {
  protocol: PolicyProtocol;
  port?: number | string;
  endPort?: number;
}

export interface IngressRule {
  /** undefined = every source (Kubernetes: missing or empty `from`). */
  from?: PolicyPeer[];
  /** undefined = every port and protocol (missing or empty `ports`). */
  ports?: PolicyPort[];
}

export interface EgressRule {
  /** undefined = every destination (missing or empty `to`). */
  to?: PolicyPeer[];
  /** undefined = every port and protocol (missing or empty `ports`). */
  ports?: PolicyPort[];
}

export type PolicyType = 'Ingress' | 'Egress';

/** Where a document starts: `file` as the user named it, 1-based `line`. */
export interface SourceRef {
  file: string;
  line: number;
}

export interface NetworkPolicy {
  kind: 'NetworkPolicy';
  apiVersion: 'networking.k8s.io/v1';
  /** metadata.namespace, "default" when omitted (as kubectl does). */
  namespace: string;
  name: string;
  /** The pods this policy isolates and admits traffic to, in `namespace`. */
  podSelector: LabelSelector;
  /**
   * The directions the policy isolates the selected pods in, defaulted as Kubernetes
   * does: given, else Ingress, plus Egress when `spec.egress` has a rule.
   */
  policyTypes: PolicyType[];
  /** Rules are additive; `[]` with policyTypes Ingress = deny all ingress to the selected pods. */
  ingress: IngressRule[];
  /** The same for what the selected pods send, with policyTypes Egress. */
  egress: EgressRule[];
  /** Where the document starts. */
  /**
   * Audit mode (annotation `tcplane.io/audit: "true"`): what this policy would drop
   * passes, reported as audited with the rule that would have dropped it. Absent: enforced.
   */
  audit?: true;
  source: SourceRef;
}

/** The tiers cluster policies sit in: Admin before NetworkPolicy, Baseline after it. */
export type ClusterTier = 'Admin' | 'Baseline';

/**
 * Accept and Deny decide; Pass hands what it matches to the next tier (Admin → the
 * NetworkPolicies, Baseline → the default, allow). v1alpha1's Allow reads as Accept.
 */
export type ClusterAction = 'Accept' | 'Deny' | 'Pass';

/**
 * Pods, cluster-wide: every pod of the namespaces `namespaces` selects, or (`pods`) the
 * pods `podSelector` selects in the namespaces `namespaceSelector` selects. Exactly one.
 */
export interface ClusterSelector {
  namespaces?: LabelSelector;
  pods?: { namespaceSelector: LabelSelector; podSelector: LabelSelector };
}

/**
 * An egress peer: pods as ClusterSelector says, or `networks`: the addresses in any of
 * these CIDRs (canonical text; a pod's address too, one by one, as an ipBlock), or
 * `nodes`: the addresses of the nodes whose labels the selector selects ({} every node).
 */
export interface ClusterPeer extends ClusterSelector {
  networks?: string[];
  nodes?: LabelSelector;
}

/**
 * A port a rule matches: `protocol` with every port, one port or the range port…endPort;
 * or `name`: the destination pod's port of that name, whatever its protocol.
 */
export type ClusterPort = { protocol: PolicyProtocol; port?: number; endPort?: number } | { name: string };

export interface ClusterRule {
  /** The rule's name as written (max 100 characters), if any: what observability shows. */
  name?: string;
  action: ClusterAction;
  /** `from` for ingress, `to` for egress: at least one. */
  peers: ClusterPeer[];
  /** undefined = all traffic. */
  ports?: ClusterPort[];
}

/** ClusterNetworkPolicy, AdminNetworkPolicy or BaselineAdminNetworkPolicy, cluster-scoped. */
export interface ClusterNetworkPolicy {
  kind: 'ClusterNetworkPolicy' | 'AdminNetworkPolicy' | 'BaselineAdminNetworkPolicy';
  apiVersion: 'policy.networking.k8s.io/v1alpha2' | 'policy.networking.k8s.io/v1alpha1';
  /** Cluster-scoped: no namespace. */
  namespace?: undefined;
  name: string;
  tier: ClusterTier;
  /**
   * 0…1000, lower first within the tier; policies of equal priority go by kind
   * (ClusterNetworkPolicy, then AdminNetworkPolicy, then BaselineAdminNetworkPolicy),
   * then name. A BaselineAdminNetworkPolicy has 0.
   */
  priority: number;
  subject: ClusterSelector;
  /** In order: the first rule that matches decides (or passes). */
  ingress: ClusterRule[];
  egress: ClusterRule[];
  /**
   * Audit mode (annotation `tcplane.io/audit: "true"`): what this policy would drop
   * passes, reported as audited with the rule that would have dropped it. Absent: enforced.
   */
  audit?: true;
  source: SourceRef;
}

/** One document of a policy file. */
export type PolicyDocument = NetworkPolicy | ClusterNetworkPolicy;
