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
  /** Every id in use (the values of `ids`), for finding the lowest free one. */
  private readonly taken = new Set<number>();
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

  /** The id of a backend, allocating the lowest free one for a new backend. */
  claim(key: string): number {
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

  /** Frees the id of a backend that is gone (a no-op for one without an id). */
  release(key: string): void {
    const id = this.ids.get(key);
    if (id === undefined) return;
    this.ids.delete(key);
    this.taken.delete(id);
    if (id < this.next) this.next = id;
  }

  /** Every backend key holding an id. */
  keys(): IterableIterator<string> {
    return this.ids.keys();
  }

  get size(): number {
    return this.ids.size;
  }
}
