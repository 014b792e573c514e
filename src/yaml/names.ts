/**
 * The Kubernetes syntax of names: label keys and values, DNS labels and subdomains. Each
 * `validate*` returns why a string is invalid, or undefined when it is valid; the parsers
 * turn the reason into a located error. A leaf module, so that the shared schema helpers
 * (schema-helpers.ts) and every input parser can use it.
 */

const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * A label (or annotation) key is a qualified name: `name` or `prefix/name`, where name is
 * at most 63 characters of `[-A-Za-z0-9_.]` starting and ending alphanumeric, and prefix
 * is a DNS-1123 subdomain (`example.com`).
 */
export function validateLabelKey(key: string): string | undefined {
  const parts = key.split('/');
  if (parts.length > 2) return 'a label key is a name with an optional DNS prefix (example.com/name), with at most one "/"';
  const name = parts[parts.length - 1];
  if (parts.length === 2) {
    const prefix = parts[0];
    if (prefix === '') return 'the prefix before "/" must not be empty';
    const bad = validateDns1123Subdomain(prefix);
    if (bad) return `prefix: ${bad}`;
  }
  if (name === '') return 'the name must not be empty';
  if (name.length > 63) return `the name must be at most 63 characters (has ${name.length})`;
  if (!NAME.test(name)) return 'the name must be alphanumeric, "-", "_" or ".", starting and ending alphanumeric';
  return undefined;
}

/** A label value: empty, or at most 63 characters of `[-A-Za-z0-9_.]` starting and ending alphanumeric. */
export function validateLabelValue(value: string): string | undefined {
  if (value === '') return undefined;
  if (value.length > 63) return `must be at most 63 characters (has ${value.length})`;
  if (!NAME.test(value)) return 'must be alphanumeric, "-", "_" or ".", starting and ending alphanumeric';
  return undefined;
}

/** DNS-1123 label (namespace names): at most 63 characters of lowercase alphanumerics and "-", alphanumeric at both ends. */
export function validateDns1123Label(s: string): string | undefined {
  if (s.length > 63) return `must be at most 63 characters (has ${s.length})`;
  if (!DNS_LABEL.test(s)) return 'must be lowercase alphanumeric or "-", starting and ending alphanumeric (a DNS-1123 label)';
  return undefined;
}

/** DNS-1123 subdomain (object names, label key prefixes): at most 253 characters, dot-separated DNS-1123 labels. */
export function validateDns1123Subdomain(s: string): string | undefined {
  if (s.length > 253) return `must be at most 253 characters (has ${s.length})`;
  if (!DNS_SUBDOMAIN.test(s)) {
    return 'must be lowercase alphanumeric, "-" or ".", each dot-separated part starting and ending alphanumeric (a DNS-1123 subdomain)';
  }
  return undefined;
}

const DNS1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;

/**
 * DNS-1035 label (Service names): a DNS-1123 label that starts with a letter, since the
 * name becomes a DNS name (`web.ns.svc`) and, in older tools, an environment variable.
 */
export function validateDns1035Label(s: string): string | undefined {
  if (s.length > 63) return `must be at most 63 characters (has ${s.length})`;
  if (!DNS1035_LABEL.test(s)) {
    return 'must be lowercase alphanumeric or "-", starting with a letter and ending alphanumeric (a DNS-1035 label)';
  }
  return undefined;
}

/**
 * IANA service name (RFC 6335 §5.1), as Kubernetes requires of container port names and
 * of a targetPort given by name: 1–15 characters of lowercase alphanumerics and "-", at
 * least one letter, no "-" at either end and no "--".
 */
export function validateIanaServiceName(s: string): string | undefined {
  if (s.length > 15) return `must be at most 15 characters (has ${s.length})`;
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(s) || s.includes('--')) {
    return 'must be lowercase alphanumeric or "-", alphanumeric at both ends, without "--"';
  }
  if (!/[a-z]/.test(s)) return 'must contain at least one letter';
  return undefined;
}
