/** Which store the CLI talks to, and a connection for the length of one command. */
import { labNatsUrl, LabNotUpError } from '../lab/state.js';
import { Store } from '../store/store.js';

/** The store to talk to: --nats, then $TCPLANE_NATS, then the running lab's. */
export async function resolveNatsUrl(flag: string | undefined): Promise<string> {
  if (flag) return flag;
  if (process.env.TCPLANE_NATS) return process.env.TCPLANE_NATS;
  try {
    return await labNatsUrl();
  } catch (err) {
    if (err instanceof LabNotUpError) {
      throw new Error('no store to talk to: pass --nats URL, set TCPLANE_NATS, or start a lab (`tcplane lab up -f LAB.yaml`)');
    }
    throw err;
  }
}

export async function withStore<T>(natsFlag: string | undefined, fn: (s: Store) => Promise<T>): Promise<T> {
  const store = await Store.connect(await resolveNatsUrl(natsFlag), { name: 'tcplane-cli' });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}
