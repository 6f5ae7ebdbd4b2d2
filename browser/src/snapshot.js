// The engine's memory snapshot, kept in the importer origin's IndexedDB: the first engine
// of a build makes it once `pipeline.bridge` is imported; the engines of later page loads
// restore it instead of starting Python and importing the packages again. One record,
// replaced by the next build's; it holds its build id and SHA-256, both checked before use.
// (IndexedDB, not Cache Storage: Chromium refuses Cache Storage to an origin whose
// certificate it does not trust, as the demo's own.)

import { onStore } from "./idb.js";

const STORE = "loadbay-engine/snapshots";
const KEY = "engine";

/**
 * @typedef {object} Kept
 * @property {string} key
 * @property {string} build the asset build id it was made by
 * @property {string} sha256 of its bytes
 * @property {Blob} bytes
 */

/** @param {Uint8Array<ArrayBuffer>} bytes */
async function sha256(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * @typedef {object} Found
 * @property {Uint8Array<ArrayBuffer>} [bytes] this build's snapshot, sound
 * @property {string} [reason] why there is none to restore
 * @property {string | null} seen the kept record's hash, whatever it holds (null: none)
 * @property {boolean} [denied] the browser keeps nothing here (its storage is refused)
 */

/**
 * This build's snapshot, if the browser keeps a sound one; else why not.
 * @param {string} build the asset build id
 * @returns {Promise<Found>}
 */
export async function findSnapshot(build) {
  /** @type {Kept | undefined} */
  const kept = await onStore(STORE, "readonly", (s) => s.get(KEY));
  if (!kept) return { reason: "no snapshot kept yet", seen: null };
  const seen = kept.sha256;
  if (kept.build !== build) return { reason: `the kept snapshot is of build ${kept.build}, not ${build}`, seen };
  const bytes = new Uint8Array(await kept.bytes.arrayBuffer());
  if ((await sha256(bytes)) !== seen) return { reason: "the kept snapshot is damaged (its SHA-256 differs)", seen };
  return { bytes, seen };
}

/**
 * Keep `bytes` as this build's snapshot in place of the record findSnapshot `seen`. The
 * engines that boot together (src/parallel.js) each made one: the first to take the Web
 * Lock writes it, the others find it written since and leave it (false).
 * @param {string} build
 * @param {Uint8Array<ArrayBuffer>} bytes
 * @param {string | null} seen
 * @returns {Promise<boolean>}
 */
export async function keepSnapshot(build, bytes, seen) {
  return navigator.locks.request(STORE, async () => {
    /** @type {Kept | undefined} */
    const kept = await onStore(STORE, "readonly", (s) => s.get(KEY));
    if (kept && kept.build === build && kept.sha256 !== seen) return false;
    /** @type {Kept} */
    const record = { key: KEY, build, sha256: await sha256(bytes), bytes: new Blob([bytes]) };
    await onStore(STORE, "readwrite", (s) => s.put(record));
    return true;
  });
}
