/**
 * For a test file that needs the store: one throwaway nats-server for the file (vitest
 * hooks) and a `store()` that opens a new connection to it; all are closed afterwards.
 */
import { afterAll, beforeAll } from 'vitest';
import { Store } from '../../src/store/store.js';
import { startNats, type TestNats } from './nats.js';

export function natsStores(): () => Promise<Store> {
  let nats: TestNats | undefined;
  const stores: Store[] = [];
  beforeAll(async () => {
    nats = await startNats();
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    await nats?.stop();
  });
  return async () => {
    if (!nats) throw new Error('natsStores: the nats-server is not up (call store() inside a test)');
    const s = await Store.connect(nats.url);
    stores.push(s);
    return s;
  };
}
