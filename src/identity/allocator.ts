/**
 * Cluster-wide security identities, allocated in the tcplane-identities bucket with KV
 * create() only (never update with an expected revision: Debian's nats-server 2.9.10 can
 * let two writers win that on a replicated bucket).
 *
 *   id/<n>            → {v, id: n, labels}   claims the number n for a label set
 *   labels/<sha256>   → {v, id: n}            claims the label set for n
 *
 * To allocate: read labels/<digest>; if absent, claim the lowest free number with
 * create(id/<n>) (moving on while it exists), then create(labels/<digest>). If another
 * node claimed the label set meanwhile, use its number and withdraw ours (nothing
 * refers to it: every node resolves labels through labels/<digest> only). Two nodes can
 * therefore never give one number two meanings, nor one label set two live numbers.
 */
import { IDENTITY } from '../datapath/constants.js';
import { identityClaim, identityRecord, type IdentityRecord } from '../store/schema.js';
import { StoreError, type Store } from '../store/store.js';
import { canonicalLabels, labelsDigest, type IdentityLabels } from './labels.js';

const MAX_ATTEMPTS = 10_000;

export class IdentityAllocator {
  /** Numbers known taken (from the watch and our own claims): a hint, create() decides. */
  private readonly taken = new Set<number>();
  private readonly cache = new Map<string, number>();

  constructor(private readonly store: Store) {}

  /** Tells the allocator about an identity seen in the bucket. */
  observe(rec: IdentityRecord): void {
    this.taken.add(rec.id);
    this.cache.set(canonicalLabels(rec.labels), rec.id);
  }

  async resolve(labels: IdentityLabels): Promise<number> {
    const canonical = canonicalLabels(labels);
    const known = this.cache.get(canonical);
    if (known !== undefined) return known;
    const digest = labelsDigest(labels);
    const claimed = await this.store.get('identities', `labels/${digest}`, identityClaim);
    if (claimed) {
      this.cache.set(canonical, claimed.value.id);
      return claimed.value.id;
    }
    let n = IDENTITY.FIRST_ALLOCATED;
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++, n++) {
      if (this.taken.has(n)) continue;
      const rec: IdentityRecord = { v: 1, id: n, labels };
      const rev = await this.store.create('identities', `id/${n}`, identityRecord.parse(rec));
      this.taken.add(n);
      if (rev === null) continue;
      const won = await this.store.create('identities', `labels/${digest}`, { v: 1, id: n });
      if (won !== null) {
        this.cache.set(canonical, n);
        return n;
      }
      const theirs = await this.store.get('identities', `labels/${digest}`, identityClaim);
      await this.store.delete('identities', `id/${n}`);
      this.taken.delete(n);
      if (!theirs) throw new StoreError(`identity ${canonical}: label claim vanished while allocating`);
      this.cache.set(canonical, theirs.value.id);
      return theirs.value.id;
    }
    throw new StoreError(`identity ${canonical}: no free identity number after ${MAX_ATTEMPTS} attempts`);
  }

  /** The identity of a label set if this allocator has seen it, without asking the store. */
  cached(labels: IdentityLabels): number | undefined {
    return this.cache.get(canonicalLabels(labels));
  }
}
