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
 * node claimed the label set meanwhile, use its number and withdraw ours. Nothing may
 * refer to a withdrawn number, so labels resolve through labels/<digest> claims only: the
 * cache is filled from claims (ours, read ones, watched ones), never from id/<n> records,
 * which a loser publishes for a moment. Two nodes can therefore never give one number
 * two meanings, nor one label set two live numbers.
 */
import { IDENTITY } from '../datapath/constants.js';
import { identityClaim, identityRecord, type IdentityRecord } from '../store/schema.js';
import { StoreError, type Store } from '../store/store.js';
import { canonicalLabels, labelsDigest, type IdentityLabels } from './labels.js';

const MAX_ATTEMPTS = 10_000;
const ID_PREFIX = 'id/';
const CLAIM_PREFIX = 'labels/';

/** A record of the identities bucket as the watch delivers it; `value` undefined = deleted. */
export interface IdentityBucketEntry {
  key: string;
  value?: unknown;
}

export class IdentityAllocator {
  /** Numbers known taken (id/<n> records seen, our own claims): a hint, create() decides. */
  private readonly taken = new Set<number>();
  /** Label digest → number, from labels/<digest> claims only. */
  private readonly claims = new Map<string, number>();

  constructor(private readonly store: Store) {}

  /** Tells the allocator about a record of the identities bucket (the agent's watch). */
  observe(entry: IdentityBucketEntry): void {
    if (entry.key.startsWith(ID_PREFIX)) {
      const n = Number(entry.key.slice(ID_PREFIX.length));
      if (entry.value) this.taken.add(n);
      else this.taken.delete(n);
    } else if (entry.key.startsWith(CLAIM_PREFIX)) {
      const digest = entry.key.slice(CLAIM_PREFIX.length);
      const claim = identityClaim.safeParse(entry.value);
      if (claim.success) this.claims.set(digest, claim.data.id);
      else this.claims.delete(digest);
    }
  }

  async resolve(labels: IdentityLabels): Promise<number> {
    const digest = labelsDigest(labels);
    const known = this.claims.get(digest);
    if (known !== undefined) return known;
    const claimed = await this.store.get('identities', `${CLAIM_PREFIX}${digest}`, identityClaim);
    if (claimed) {
      this.claims.set(digest, claimed.value.id);
      return claimed.value.id;
    }
    let n = IDENTITY.FIRST_ALLOCATED;
    for (let attempt = 0; attempt < MAX_ATTEMPTS && n < IDENTITY.LOCAL; attempt++, n++) {
      if (this.taken.has(n)) continue;
      const rec: IdentityRecord = { v: 1, id: n, labels };
      const rev = await this.store.create('identities', `${ID_PREFIX}${n}`, identityRecord.parse(rec));
      this.taken.add(n);
      if (rev === null) continue;
      const won = await this.store.create('identities', `${CLAIM_PREFIX}${digest}`, { v: 1, id: n });
      if (won !== null) {
        this.claims.set(digest, n);
        return n;
      }
      const theirs = await this.store.get('identities', `${CLAIM_PREFIX}${digest}`, identityClaim);
      await this.store.delete('identities', `${ID_PREFIX}${n}`);
      this.taken.delete(n);
      if (!theirs) throw new StoreError(`identity ${canonicalLabels(labels)}: label claim vanished while allocating`);
      this.claims.set(digest, theirs.value.id);
      return theirs.value.id;
    }
    throw new StoreError(`identity ${canonicalLabels(labels)}: no free identity number after ${MAX_ATTEMPTS} attempts`);
  }
}
