/** Services as the store holds them, each checked with serviceSchema (invalid ones reported apart). */
import { serviceRecord, type ServiceRecord } from '../store/schema.js';
import type { Store } from '../store/store.js';
import { serviceSchema } from './schema.js';
import type { Service } from './types.js';

/** A service record's spec, when it is a valid stored service. */
export function serviceOf(r: ServiceRecord | null | undefined): Service | undefined {
  if (!r) return undefined;
  const v = serviceSchema.safeParse(r.spec);
  return v.success ? v.data : undefined;
}

/** Every valid stored service, sorted by namespace/name; `invalid` names the others and why. */
export async function storedServices(store: Store): Promise<{ services: Service[]; invalid: { key: string; error: string }[] }> {
  const { entries, invalid } = await store.list('services', serviceRecord);
  const services: Service[] = [];
  for (const [key, e] of entries) {
    const v = serviceSchema.safeParse(e.value.spec);
    if (v.success) services.push(v.data);
    else invalid.push({ key, error: `${v.error.issues[0]?.path.join('.')}: ${v.error.issues[0]?.message ?? 'invalid'}` });
  }
  services.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
  return { services, invalid };
}
