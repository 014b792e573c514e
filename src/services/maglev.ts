/**
 * Maglev consistent hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software
 * Network Load Balancer", NSDI 2016, section 3.4) for service backends.
 *
 * For each service port the agent builds a lookup table of M slots (M prime), each
 * holding a backend; the datapath picks `table[flowHash % M]`. Every node builds the
 * identical table from cluster-wide inputs only: the backends' names (opaque strings,
 * e.g. "x/a 10.244.1.10:8080/TCP", never node-local ids), one cluster-wide 32-bit seed
 * and M. So a flow that lands on another node (an ECMP change in front of a NodePort)
 * still reaches the same backend, and a change of backends moves few flows.
 *
 * The hash, fixed so that any implementation can rebuild the same table:
 *   digest = SHA-256(seed as 4 bytes big-endian ‖ name as UTF-8)
 *   h1     = digest[0..8)  as an unsigned 64-bit big-endian integer
 *   h2     = digest[8..16) as an unsigned 64-bit big-endian integer
 *   offset = h1 mod M,  skip = h2 mod (M − 1) + 1
 * Disjoint parts of one SHA-256 output serve as the two independent hashes the paper
 * asks for; the seed is part of the hashed input, so another seed gives other
 * permutations. SHA-256 costs about a microsecond per backend, nothing next to the fill.
 * Backend j's preference list is offset, offset + skip, offset + 2·skip, … (mod M); M is
 * prime and 1 ≤ skip < M, so the list visits every slot exactly once.
 *
 * Backends are sorted by the bytes of their UTF-8 names before filling (the fill breaks
 * ties by backend order), so the table does not depend on the order the caller lists them
 * in; the returned values are nevertheless indexes into the caller's array.
 *
 * Table sizes come from a fixed ladder (MAGLEV_SIZES), chosen per service from its backend
 * count alone (maglevTableSize): memory follows backends, every node picks the same size
 * without coordination, and the size, which reshuffles the whole table when it changes,
 * changes only when the count crosses a ladder step.
 */
import { createHash } from 'node:crypto';

export type MaglevErrorCode =
  | 'bad-size' // not an integer, not prime, or above MAGLEV_MAX_TABLE_SIZE
  | 'too-few-slots' // fewer slots than backends
  | 'duplicate-backend'
  | 'bad-backend-name' // not well-formed UTF-16 (a lone surrogate), so no UTF-8 bytes
  | 'bad-seed' // not an integer in [0, 2^32)
  | 'bad-count' // a backend count that is not a non-negative integer
  | 'bad-max-size' // a configured maximum that is not a ladder size
  | 'too-many-backends'; // more backends than the configured maximum has slots

/** Bad input to the Maglev functions; `code` says which check failed. Messages read `op: detail`. */
export class MaglevError extends Error {
  override name = 'MaglevError';
  constructor(
    readonly code: MaglevErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** 2^24: the largest table maglevTable builds (64 MiB of slots). */
export const MAGLEV_MAX_TABLE_SIZE = 1 << 24;

/**
 * The table sizes services use: the largest prime below each power of two 2^8, 2^10, …,
 * 2^24, so each step is about ×4 (every size is checked in the unit tests). Never
 * renumber: every node must agree on the ladder, so a change is a cluster-wide upgrade.
 */
export const MAGLEV_SIZES: readonly number[] = Object.freeze([
  251, 1021, 4093, 16381, 65521, 262139, 1048573, 4194301, 16777213,
]);

/**
 * The default maximum table size an agent allows a service: 16381 slots (64 KiB), as
 * Cilium's default. It keeps M ≥ 100·N up to 163 backends; services with more backends
 * get this size and a coarser balance (see maglevTableSize) unless the agent is configured
 * with a larger ladder size.
 */
export const MAGLEV_DEFAULT_MAX_SIZE = 16381;

/** Slots per backend below which the paper finds balance suffers: M ≥ 100·N. */
export const MAGLEV_SLOTS_PER_BACKEND = 100;

/**
 * True for a prime `n`. Trial division by 6k ± 1 up to √n: about 1,400 divisions for a
 * table size (≤ 2^24), still well under a second for any safe integer.
 */
export function isPrime(n: number): boolean {
  if (!Number.isSafeInteger(n) || n < 2) return false;
  if (n < 4) return true;
  if (n % 2 === 0 || n % 3 === 0) return false;
  for (let d = 5; d * d <= n; d += 6) {
    if (n % d === 0 || n % (d + 2) === 0) return false;
  }
  return true;
}

/**
 * Why `size` cannot be an agent's maximum table size, or undefined when it can (it must
 * be one of MAGLEV_SIZES). For option validation, e.g. a zod `refine`.
 */
export function validateMaglevSize(size: number): string | undefined {
  if (MAGLEV_SIZES.includes(size)) return undefined;
  return `must be one of the Maglev table sizes ${MAGLEV_SIZES.join(', ')} (got ${size})`;
}

/**
 * The smallest table: 100 slots a backend for up to 10 backends. Below it a service of a
 * few backends would change size (a full reshuffle) each time it went from 2 to 3
 * backends and back, which is exactly when removing one must move only its own flows.
 */
export const MAGLEV_MIN_TABLE_SIZE = 1021;

/**
 * The table size of a service port with `backendCount` backends: the smallest ladder size
 * ≥ 100 × backendCount and ≥ MAGLEV_MIN_TABLE_SIZE (1021 for up to 10 backends), but
 * never above `maxSize`.
 *
 * A pure function of the count, so every node picks the same size with no coordination.
 * Growth is rare: the size changes only when the count crosses a step (11, 41, 164,
 * 656, … backends), and only then is the table reshuffled in full. A service whose count
 * goes back and forth across a step reshuffles each time; established connections keep
 * their backend through conntrack, so that costs only flows that move between nodes
 * during the change. Between maxSize / 100 and maxSize backends the size stays at
 * maxSize and the balance coarsens (a backend's share is within one slot of M/N, so
 * within 1 / ⌊M/N⌋ of it).
 *
 * Throws MaglevError when backendCount is not a non-negative integer, maxSize is not a
 * ladder size, or backendCount exceeds maxSize (a table must give every backend a slot).
 */
export function maglevTableSize(backendCount: number, maxSize: number): number {
  if (!Number.isSafeInteger(backendCount) || backendCount < 0) {
    throw new MaglevError('bad-count', `maglev size: backend count must be a non-negative integer (got ${backendCount})`);
  }
  const bad = validateMaglevSize(maxSize);
  if (bad) throw new MaglevError('bad-max-size', `maglev size: maximum table size ${bad}`);
  if (backendCount > maxSize) {
    throw new MaglevError(
      'too-many-backends',
      `maglev size: ${backendCount} backends do not fit a table of at most ${maxSize} slots; raise the maximum table size`,
    );
  }
  const want = Math.max(MAGLEV_SLOTS_PER_BACKEND * backendCount, MAGLEV_MIN_TABLE_SIZE);
  for (const size of MAGLEV_SIZES) {
    if (size >= want || size === maxSize) return size;
  }
  return maxSize; // unreachable: maxSize is on the ladder
}

/** Lone surrogates have no UTF-8 form (Buffer.from would map them all to U+FFFD). */
const LONE_SURROGATE = /\p{Cs}/u;

/**
 * The Maglev lookup table of `size` slots for `backends`: slot k holds the index (into
 * `backends`, as given) of the backend for flows with flowHash % size === k.
 *
 * The same set of names, size and seed give the same table in any order (see the module
 * comment for the hash). Each backend holds ⌊size/N⌋ or ⌈size/N⌉ slots: the fill is round
 * robin, one slot per backend per turn, each taking the next free slot of its
 * preference list.
 *
 * Cost: N SHA-256s, a sort, then the fill. The fill computes preference lists as it goes
 * (O(N) memory, not the N × M permutation matrix some implementations precompute);
 * its expected number of probes is about M·ln M, its worst case N·M (each backend walks at
 * most its whole list). Measured (median of 50, Node 20, a 2-vCPU AMD EPYC): 0.85 ms for
 * 16381 slots and 100 backends, 4 ms for 65521 and 655, 21–36 ms for 262139 and 2621.
 *
 * An empty `backends` gives an empty table (length 0); `size` and `seed` are still
 * checked. Throws MaglevError for a size that is not a prime ≤ 2^24 or smaller than the
 * number of backends, a seed outside [0, 2^32), a duplicate name, or a name with a lone
 * surrogate.
 */
export function maglevTable(backends: readonly string[], size: number, seed: number): Uint32Array {
  if (!Number.isSafeInteger(size) || !isPrime(size)) {
    throw new MaglevError('bad-size', `maglev table: size must be a prime (got ${size})`);
  }
  if (size > MAGLEV_MAX_TABLE_SIZE) {
    throw new MaglevError('bad-size', `maglev table: size must be at most 2^24 = ${MAGLEV_MAX_TABLE_SIZE} (got ${size})`);
  }
  if (!Number.isSafeInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new MaglevError('bad-seed', `maglev table: seed must be an integer in [0, 2^32) (got ${seed})`);
  }
  const n = backends.length;
  if (n > size) {
    throw new MaglevError('too-few-slots', `maglev table: ${n} backends do not fit ${size} slots`);
  }
  if (n === 0) return new Uint32Array(0);

  // Canonical order: by UTF-8 bytes, which any language can reproduce (JavaScript's
  // default string order is by UTF-16 code units, which differs above U+FFFF).
  const names = backends.map((name, index) => {
    if (LONE_SURROGATE.test(name)) {
      throw new MaglevError('bad-backend-name', `maglev table: backend ${index} (${JSON.stringify(name)}) is not well-formed Unicode`);
    }
    return { bytes: Buffer.from(name, 'utf8'), index };
  });
  names.sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  for (let i = 1; i < n; i++) {
    if (names[i].bytes.equals(names[i - 1].bytes)) {
      throw new MaglevError('duplicate-backend', `maglev table: duplicate backend ${JSON.stringify(backends[names[i].index])}`);
    }
  }

  // Per backend (in sorted order): the next slot of its preference list, and its step.
  const next = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const m = BigInt(size);
  const seedBytes = Buffer.alloc(4);
  seedBytes.writeUInt32BE(seed);
  for (let i = 0; i < n; i++) {
    const digest = createHash('sha256').update(seedBytes).update(names[i].bytes).digest();
    next[i] = Number(digest.readBigUInt64BE(0) % m);
    skip[i] = Number(digest.readBigUInt64BE(8) % (m - 1n)) + 1;
  }

  if (n === 1) return new Uint32Array(size); // every slot is backend 0

  const EMPTY = 0xffffffff; // never an index: n ≤ size ≤ 2^24
  const table = new Uint32Array(size).fill(EMPTY);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      let slot = next[i];
      while (table[slot] !== EMPTY) {
        slot += skip[i];
        if (slot >= size) slot -= size;
      }
      table[slot] = names[i].index;
      slot += skip[i];
      next[i] = slot >= size ? slot - size : slot;
      if (++filled === size) return table;
    }
  }
}
