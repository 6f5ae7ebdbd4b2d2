// Resuming an interrupted upload. IndexedDB (or, where the browser refuses it to the
// embedded importer, the host page: `keeper`) keeps, per importer (publishable key and
// template), the import's id and upload token, the reading choices, the mapping and the
// user's edits (the engine's SavedReview), and a fingerprint of the file: never its cells.
// Picking the same file again after a reload, a closed tab or a dropped connection sends
// only the batches the server lacks.

import { onStore } from "./idb.js";

const DB_NAME = "loadbay";
const STORE = "uploads";
const MIB = 1024 * 1024;

/**
 * @typedef {object} Fingerprint
 * @property {number} size
 * @property {number} lastModified
 * @property {string} sample hex SHA-256 of the first and the last MiB
 */

/**
 * @typedef {object} SavedUpload
 * @property {string} key publishable key and template id
 * @property {string} importId
 * @property {string} token the import's upload token
 * @property {string} fileName
 * @property {Fingerprint} fingerprint
 * @property {import("./types.js").OpenOptions} options how the file was read
 * @property {boolean} [headerConfirmed]
 * @property {Record<string, string>} [confirmed] the confirmed field -> header
 * @property {Record<string, unknown>} review the engine's SavedReview: mapping and edits
 * @property {number} savedAt epoch milliseconds
 */

/** @param {string} publishableKey @param {string} templateId */
export const uploadKey = (publishableKey, templateId) => `${publishableKey}/${templateId}`;

/** @param {ArrayBuffer} buffer */
const hex = (buffer) => [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");

/**
 * What identifies the file without keeping it: its size, modification time and a hash of
 * its first and last MiB (the whole file is never read for this).
 * @param {Blob & {lastModified?: number}} file
 * @returns {Promise<Fingerprint>}
 */
export async function fingerprint(file) {
  const head = file.slice(0, Math.min(MIB, file.size));
  const tail = file.slice(Math.max(file.size - MIB, 0));
  const bytes = await new Blob([head, tail]).arrayBuffer();
  return { size: file.size, lastModified: file.lastModified ?? 0, sample: hex(await crypto.subtle.digest("SHA-256", bytes)) };
}

/** @param {Fingerprint} a @param {Fingerprint} b */
export const sameFile = (a, b) => a.size === b.size && a.lastModified === b.lastModified && a.sample === b.sample;

/**
 * @template T
 * @param {"readonly" | "readwrite"} mode
 * @param {(store: IDBObjectStore) => IDBRequest<T>} work
 * @param {IDBFactory} [factory]
 */
const onUploads = (mode, work, factory) => onStore(`${DB_NAME}/${STORE}`, mode, work, factory);

/**
 * The interrupted upload kept for this importer, if any.
 * @param {string} key
 * @param {IDBFactory} [factory]
 * @returns {Promise<SavedUpload | undefined>}
 */
export const findUpload = (key, factory) => onUploads("readonly", (s) => s.get(key), factory);

/** @param {SavedUpload} saved @param {IDBFactory} [factory] */
export const saveUpload = (saved, factory) => onUploads("readwrite", (s) => s.put(saved), factory);

/** @param {string} key @param {IDBFactory} [factory] */
export const forgetUpload = (key, factory) => onUploads("readwrite", (s) => s.delete(key), factory);

/**
 * Where the kept uploads live: what find, save and forget do.
 * @typedef {object} Keeper
 * @property {(key: string) => Promise<SavedUpload | undefined>} find
 * @property {(saved: SavedUpload) => Promise<void>} save
 * @property {(key: string) => Promise<void>} forget
 */

/**
 * @typedef {(action: "load" | "save" | "delete", key: string, record?: SavedUpload) => Promise<SavedUpload | undefined>} Relay
 * asks the host page (through embed.js) to keep, give back or delete the record of `key`
 */

/**
 * The importer's own IndexedDB, and where the browser refuses it (a cross-origin frame whose
 * browser blocks third-party storage) `relay`: the host page keeps the record in its own
 * storage under a loadbay key (browser/sdk/embed.js). A record is only ever in one of them.
 * @param {Relay} relay
 * @param {IDBFactory} [factory]
 * @returns {Keeper}
 */
export function keeper(relay, factory) {
  /** @type {Promise<boolean> | null} */
  let usable = null;
  // Whether IndexedDB answers at all, asked once: a refused open is not a missing record.
  const local = () => {
    usable ??= onUploads("readonly", (s) => s.count(), factory ?? globalThis.indexedDB).then(
      () => true,
      () => false,
    );
    return usable;
  };
  return {
    find: async (key) => ((await local()) ? findUpload(key, factory) : relay("load", key)),
    save: async (saved) => {
      if (await local()) await saveUpload(saved, factory);
      else await relay("save", saved.key, saved);
    },
    forget: async (key) => {
      if (await local()) await forgetUpload(key, factory);
      else await relay("delete", key);
    },
  };
}

/**
 * A Keeper that asks `relay` for everything: the worker's, whose records the importer page
 * keeps (the page alone decides between its IndexedDB and the host page's storage).
 * @param {Relay} relay
 * @returns {Keeper}
 */
export function relayed(relay) {
  return {
    find: (key) => relay("load", key),
    save: async (saved) => void (await relay("save", saved.key, saved)),
    forget: async (key) => void (await relay("delete", key)),
  };
}

/**
 * The other way round: a Keeper answering a Relay's requests (the page answering its worker).
 * @param {Keeper} kept
 * @returns {Relay}
 */
export function answering(kept) {
  return async (action, key, record) => {
    if (action === "load") return kept.find(key);
    if (action === "save" && record) await kept.save(record);
    else if (action === "delete") await kept.forget(key);
    return undefined;
  };
}
