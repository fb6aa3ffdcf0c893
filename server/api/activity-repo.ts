import type { Store } from '../store/store.js';

/** Users' last activity as reported through POST /hub/api/users/NAME/activity. Key: `api-user-activity` (name -> ms). */
export class UserActivityRepo {
  constructor(private readonly store: Store) {}

  async record(name: string, atMs: number): Promise<void> {
    const previous = Number((await this.store.hashGet('api-user-activity', name)) ?? 0);
    // Reports may arrive out of order: activity only moves forward (JupyterHub does the same).
    if (atMs > previous) await this.store.hashSet('api-user-activity', { [name]: String(atMs) });
  }

  async all(): Promise<Map<string, number>> {
    return new Map(Object.entries(await this.store.hashGetAll('api-user-activity')).map(([k, v]) => [k, Number(v)]));
  }

  async forget(name: string): Promise<void> {
    await this.store.hashDelete('api-user-activity', name);
  }
}
