/**
 * Backend ids: the index of each backend in tp_backends_v1, which conntrack entries and
 * Maglev tables hold. Node-local (each agent numbers its own map) but stable: ids are
 * read back from the pinned map when an agent starts, so a restart renumbers nothing
 * and established connections keep pointing at their backend. A backend is one service
 * port's (address, port, protocol); an id freed when its backend goes is reused later,
 * which the datapath tolerates (it compares the entry's address and service).
 */
export const backendKey = (serviceId: number, ip: string, port: number, protocol: number) => `${serviceId}|${ip}|${port}|${protocol}`;

export class BackendIdsExhausted extends Error {
  override name = 'BackendIdsExhausted';
}

export class BackendIds {
  private readonly ids = new Map<string, number>();
  /** The ids in `ids`, kept beside it: claiming a new id must not scan every id (10,000 services × their backends). */
  private readonly taken = new Set<number>();
  private claimed = new Set<string>();
  private next = 1;

  /**
   * @param adopted backend keys (backendKey) and the ids the map holds them under
   * @param capacity the backends map's size: ids run from 1 to capacity − 1
   */
  constructor(
    adopted: Iterable<[key: string, id: number]> = [],
    private readonly capacity = 65536,
  ) {
    for (const [key, id] of adopted) {
      this.ids.set(key, id);
      this.taken.add(id);
    }
  }

  /** Starts a compile: ids not claimed again before end() are freed. */
  begin(): void {
    this.claimed = new Set();
  }

  /** The id of a backend, allocating the lowest free one for a new backend. */
  claim(key: string): number {
    this.claimed.add(key);
    const have = this.ids.get(key);
    if (have !== undefined) return have;
    while (this.taken.has(this.next)) this.next++;
    if (this.next >= this.capacity) {
      throw new BackendIdsExhausted(`backend ids: all ${this.capacity - 1} in use on this node (raise --lb-max-backends)`);
    }
    const id = this.next++;
    this.ids.set(key, id);
    this.taken.add(id);
    return id;
  }

  /** Frees every id not claimed since begin(). */
  end(): void {
    for (const [key, id] of [...this.ids]) {
      if (this.claimed.has(key)) continue;
      this.ids.delete(key);
      this.taken.delete(id);
      if (id < this.next) this.next = id;
    }
  }

  get size(): number {
    return this.ids.size;
  }
}
