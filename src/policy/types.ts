/**
 * The normalized policy model: what `parsePolicyText` returns and what the agent compiles
 * into BPF map entries. Every default Kubernetes applies is already applied here, so a
 * consumer never has to know how the user spelled a document.
 *
 * v0 subset: NetworkPolicy (`networking.k8s.io/v1`), ingress only, matchLabels selectors,
 * numeric ports. Everything else is rejected by the parser as "not supported yet".
 */

/** Pods (or namespaces) whose labels include every pair of `matchLabels`; `{}` selects everything. */
export interface LabelSelector {
  matchLabels: Record<string, string>;
}

/**
 * A source of traffic; at least one selector is set. Only `podSelector`: pods of the
 * policy's own namespace. Only `namespaceSelector`: every pod of the selected namespaces.
 * Both: pods matching `podSelector` in the namespaces `namespaceSelector` selects.
 */
export interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
}

export type PolicyProtocol = 'TCP' | 'UDP';

/** `port` undefined = every port of that protocol. */
export interface PolicyPort {
  protocol: PolicyProtocol;
  port?: number;
}

export interface IngressRule {
  /** undefined = every source (Kubernetes: missing or empty `from`). */
  from?: PolicyPeer[];
  /** undefined = every port and protocol (missing or empty `ports`). */
  ports?: PolicyPort[];
}

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
  /** v0: only Ingress (also the Kubernetes default when `spec.egress` is absent). */
  policyTypes: 'Ingress'[];
  /** Rules are additive; `[]` with policyTypes Ingress = deny all ingress to the selected pods. */
  ingress: IngressRule[];
  /** Where the document starts. */
  source: SourceRef;
}

/** One document of a policy file. The union grows as kinds land. */
export type PolicyDocument = NetworkPolicy;
