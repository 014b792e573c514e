import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  matchesSelector,
  validateDns1035Label,
  validateDns1123Label,
  validateDns1123Subdomain,
  validateIanaServiceName,
  validateLabelKey,
  validateLabelValue,
} from '../../src/policy/selector.js';
import type { SelectorRequirement } from '../../src/policy/types.js';

const labelName = fc.stringMatching(/^[a-z0-9]([-a-z0-9_.]{0,10}[a-z0-9])?$/);
const labelMap = fc.dictionary(labelName, labelName, { maxKeys: 8 });
const sel = (matchLabels: Record<string, string>, matchExpressions: SelectorRequirement[] = []) => ({ matchLabels, matchExpressions });

describe('selector', () => {
  it('selector - empty matchLabels selects everything', () => {
    expect(matchesSelector(sel({}), {})).toBe(true);
    expect(matchesSelector(sel({}), { app: 'web' })).toBe(true);
  });

  it('selector - every pair must match', () => {
    const s = sel({ app: 'web', tier: 'front' });
    expect(matchesSelector(s, { app: 'web', tier: 'front', extra: 'x' })).toBe(true);
    expect(matchesSelector(s, { app: 'web' })).toBe(false);
    expect(matchesSelector(s, { app: 'web', tier: 'back' })).toBe(false);
  });

  it('selector - an empty value matches only a label present with an empty value', () => {
    const s = sel({ canary: '' });
    expect(matchesSelector(s, { canary: '' })).toBe(true);
    expect(matchesSelector(s, {})).toBe(false);
  });

  it('selector - keys inherited from Object.prototype are not labels', () => {
    expect(matchesSelector(sel({ constructor: 'x' }), {})).toBe(false);
    expect(matchesSelector(sel({ toString: 'x' }), { toString: 'x' })).toBe(true);
  });

  it('selector - a selector built from a subset of the labels always matches them', () => {
    fc.assert(
      fc.property(labelMap, fc.func(fc.boolean()), (labels, keep) => {
        const matchLabels = Object.fromEntries(Object.entries(labels).filter(([k]) => keep(k)));
        return matchesSelector(sel(matchLabels), labels);
      }),
    );
  });

  it('selector - a selector with a conflicting value never matches', () => {
    fc.assert(
      fc.property(
        labelMap.filter((m) => Object.keys(m).length > 0),
        fc.nat(),
        labelName,
        (labels, pick, other) => {
          const keys = Object.keys(labels);
          const key = keys[pick % keys.length];
          fc.pre(other !== labels[key]);
          return !matchesSelector(sel({ ...labels, [key]: other }), labels);
        },
      ),
    );
  });

  it('selector - matchExpressions: In and Exists need the key, NotIn and DoesNotExist are met without it', () => {
    const req = (operator: SelectorRequirement['operator'], values: string[] = []) => sel({}, [{ key: 'tier', operator, values }]);
    const front = { tier: 'front' };
    const back = { tier: 'back' };
    const none = { app: 'web' };
    expect([front, back, none].map((l) => matchesSelector(req('In', ['front', 'edge']), l))).toEqual([true, false, false]);
    expect([front, back, none].map((l) => matchesSelector(req('NotIn', ['front']), l))).toEqual([false, true, true]);
    expect([front, back, none].map((l) => matchesSelector(req('Exists'), l))).toEqual([true, true, false]);
    expect([front, back, none].map((l) => matchesSelector(req('DoesNotExist'), l))).toEqual([false, false, true]);
  });

  it('selector - matchLabels and every expression are ANDed', () => {
    const s = sel({ app: 'web' }, [
      { key: 'tier', operator: 'In', values: ['front'] },
      { key: 'canary', operator: 'DoesNotExist', values: [] },
    ]);
    expect(matchesSelector(s, { app: 'web', tier: 'front' })).toBe(true);
    expect(matchesSelector(s, { app: 'db', tier: 'front' })).toBe(false);
    expect(matchesSelector(s, { app: 'web', tier: 'back' })).toBe(false);
    expect(matchesSelector(s, { app: 'web', tier: 'front', canary: '' })).toBe(false);
  });

  it('selector - an In expression of one value means the same as that matchLabels pair', () => {
    fc.assert(
      fc.property(labelMap, labelName, labelName, (labels, key, value) => {
        return matchesSelector(sel({}, [{ key, operator: 'In', values: [value] }]), labels) === matchesSelector(sel({ [key]: value }), labels);
      }),
    );
  });

  it('selector - a selector naming a key the labels lack never matches', () => {
    fc.assert(
      fc.property(labelMap, labelName, labelName, (labels, key, value) => {
        fc.pre(!Object.hasOwn(labels, key));
        return !matchesSelector(sel({ [key]: value }), labels);
      }),
    );
  });
});

describe('label syntax', () => {
  it.each(['app', 'a', 'App_1.x-y', 'example.com/app', 'kubernetes.io/metadata.name', 'x'.repeat(63), `${'a'.repeat(253)}/n`])(
    'label syntax - key %s is valid',
    (key) => expect(validateLabelKey(key)).toBeUndefined(),
  );

  it.each([
    ['', 'empty'],
    ['-app', 'alphanumeric'],
    ['app-', 'alphanumeric'],
    ['a b', 'alphanumeric'],
    ['x'.repeat(64), '63'],
    ['a/b/c', 'at most one "/"'],
    ['/app', 'prefix'],
    ['example.com/', 'empty'],
    ['Example.com/app', 'DNS-1123 subdomain'],
    [`${'a'.repeat(254)}/n`, '253'],
  ])('label syntax - key %j is invalid (%s)', (key, why) => {
    expect(validateLabelKey(key)).toContain(why);
  });

  it('label syntax - values may be empty, at most 63 characters, alphanumeric at both ends', () => {
    for (const ok of ['', 'web', 'v1.2_3-x', 'A'.repeat(63)]) expect(validateLabelValue(ok)).toBeUndefined();
    for (const bad of ['-web', 'web.', 'a b', 'a/b', 'A'.repeat(64)]) expect(validateLabelValue(bad)).toBeDefined();
  });

  it('label syntax - DNS-1123 labels and subdomains', () => {
    expect(validateDns1123Label('team-a')).toBeUndefined();
    expect(validateDns1123Label('team.a')).toBeDefined();
    expect(validateDns1123Label('Team')).toBeDefined();
    expect(validateDns1123Label('a'.repeat(64))).toContain('63');
    expect(validateDns1123Subdomain('allow.web-1')).toBeUndefined();
    expect(validateDns1123Subdomain('allow..web')).toBeDefined();
    expect(validateDns1123Subdomain('allow_web')).toBeDefined();
    expect(validateDns1123Subdomain('a'.repeat(254))).toContain('253');
  });

  it('label syntax - DNS-1035 labels start with a letter', () => {
    for (const ok of ['web', 'w', 'web-1', 'a'.repeat(63)]) expect(validateDns1035Label(ok), ok).toBeUndefined();
    expect(validateDns1035Label('1web')).toContain('starting with a letter');
    expect(validateDns1035Label('-web')).toContain('DNS-1035');
    expect(validateDns1035Label('web-')).toContain('DNS-1035');
    expect(validateDns1035Label('Web')).toContain('DNS-1035');
    expect(validateDns1035Label('web.a')).toContain('DNS-1035');
    expect(validateDns1035Label('')).toContain('DNS-1035');
    expect(validateDns1035Label('a'.repeat(64))).toBe('must be at most 63 characters (has 64)');
  });

  it('label syntax - IANA service names: 15 characters, a letter, no "--"', () => {
    for (const ok of ['http', 'h2c', 'serve-80-tcp', 'a'.repeat(15), '8080x']) expect(validateIanaServiceName(ok), ok).toBeUndefined();
    expect(validateIanaServiceName('8080')).toBe('must contain at least one letter');
    expect(validateIanaServiceName('a'.repeat(16))).toBe('must be at most 15 characters (has 16)');
    for (const bad of ['web--1', '-web', 'web-', 'Web', 'web_1', '']) expect(validateIanaServiceName(bad), bad).toContain('without "--"');
  });
});
