// One IndexedDB request as a promise: the importer's stores (kept uploads, the engine's
// snapshot) are each one database holding one object store keyed by "key".

/**
 * @template T
 * @param {string} name the database, and its one store
 * @param {"readonly" | "readwrite"} mode
 * @param {(store: IDBObjectStore) => IDBRequest<T>} work
 * @param {IDBFactory} [factory]
 * @returns {Promise<T>}
 */
export function onStore(name, mode, work, factory = indexedDB) {
  const [database, store] = name.split("/");
  return new Promise((resolve, reject) => {
    const opening = factory.open(database, 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore(store, { keyPath: "key" });
    opening.onerror = () => reject(opening.error);
    opening.onsuccess = () => {
      const db = opening.result;
      const tx = db.transaction(store, mode);
      const request = work(tx.objectStore(store));
      tx.oncomplete = () => {
        db.close();
        resolve(request.result);
      };
      tx.onerror = () => {
        db.close();
        reject(tx.error);
      };
    };
  });
}
