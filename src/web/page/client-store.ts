/**
 * The browser client's StateStore: h_i, the last round applied and the update in flight, in IndexedDB,
 * saved before anything is sent, so a reloaded tab resumes like a Node client with --state-dir. States
 * are keyed by the run's config and the client id; a finished run's state is dropped (the same config
 * can then run again).
 */
import type { ClientState, StateStore } from '../../net/session.js';

const DB = 'sparse-proxskip-client';
const STORE = 'states';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error ?? new Error('IndexedDB request failed'));
  });
}

async function sha256(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export async function indexedDbStore(): Promise<StateStore & { forget(): Promise<void> }> {
  const open = indexedDB.open(DB, 1);
  open.onupgradeneeded = () => open.result.createObjectStore(STORE);
  const db = await request(open);
  const run = async (mode: IDBTransactionMode, f: (s: IDBObjectStore) => IDBRequest) => request(f(db.transaction(STORE, mode).objectStore(STORE)));
  let key: string | null = null;
  return {
    where: "this browser's IndexedDB",
    async load(id, d, config) {
      key = `${await sha256(config)}:${id}`;
      const st = (await run('readonly', (s) => s.get(key!))) as ClientState | undefined;
      // (a state of another model cannot sit under this config's key)
      return st && (st.h === null || st.h.length === d) ? st : null;
    },
    async save(st) {
      if (key !== null) await run('readwrite', (s) => s.put(st, key!));
    },
    async forget() {
      if (key !== null) await run('readwrite', (s) => s.delete(key!));
    },
  };
}
