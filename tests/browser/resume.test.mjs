// Resume: the fingerprint tells the same file from another, and IndexedDB keeps one
// interrupted upload per importer (fake-indexeddb stands in for the browser's).
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { test } from "node:test";

// tests/ sits outside browser/, so the package is imported by its path
import { IDBFactory } from "../../browser/node_modules/fake-indexeddb/build/esm/index.js";

import { findUpload, fingerprint, forgetUpload, keeper, sameFile, saveUpload, uploadKey } from "../../browser/src/resume.js";

const MIB = 1024 * 1024;

/** A File-like Blob of `size` bytes, byte i = i % 251, with byte `poke` changed. */
function file(size, { lastModified = 1700000000000, poke = -1 } = {}) {
  const bytes = new Uint8Array(size).map((_, i) => (i === poke ? 7 : i % 251));
  const blob = new Blob([bytes]);
  return Object.assign(blob, { lastModified, name: "big.csv" });
}

test("the fingerprint is the size, the time and a hash of the first and last MiB", async () => {
  const f = file(3 * MIB);
  const bytes = new Uint8Array(await f.arrayBuffer());
  const sample = createHash("sha256").update(bytes.subarray(0, MIB)).update(bytes.subarray(2 * MIB)).digest("hex");
  assert.deepEqual(await fingerprint(f), { size: 3 * MIB, lastModified: 1700000000000, sample });
  const small = file(1000);
  const whole = createHash("sha256").update(new Uint8Array(await small.arrayBuffer())).update(new Uint8Array(await small.arrayBuffer())).digest("hex");
  assert.equal((await fingerprint(small)).sample, whole); // head and tail are the whole file
});

test("another file, a touched file or an edited first or last MiB do not match", async () => {
  const same = await fingerprint(file(3 * MIB));
  assert.ok(sameFile(same, await fingerprint(file(3 * MIB))));
  for (const other of [
    file(3 * MIB + 1),
    file(3 * MIB, { lastModified: 1 }),
    file(3 * MIB, { poke: 10 }),
    file(3 * MIB, { poke: 3 * MIB - 10 }),
  ]) {
    assert.ok(!sameFile(same, await fingerprint(other)));
  }
});

test("one interrupted upload is kept per importer, and forgotten", async () => {
  const factory = new IDBFactory();
  const key = uploadKey("pk_1", "tpl_1");
  assert.equal(await findUpload(key, factory), undefined);
  const saved = {
    key,
    importId: "imp_1",
    token: "tok",
    fileName: "big.csv",
    fingerprint: { size: 1, lastModified: 2, sample: "ab" },
    options: { header_row: "1" },
    review: { mapping: { email: 0 }, edits: {}, deleted: [] },
    savedAt: 5,
  };
  await saveUpload(saved, factory);
  await saveUpload({ ...saved, key: uploadKey("pk_1", "tpl_2"), importId: "imp_2" }, factory);
  assert.deepEqual(await findUpload(key, factory), saved);
  await saveUpload({ ...saved, importId: "imp_3" }, factory); // a new import replaces it
  assert.equal((await findUpload(key, factory)).importId, "imp_3");
  await forgetUpload(key, factory);
  assert.equal(await findUpload(key, factory), undefined);
  assert.equal((await findUpload(uploadKey("pk_1", "tpl_2"), factory)).importId, "imp_2");
});

/** A relay standing for the host page: a Map, and the requests it was asked. */
function hostPage() {
  const records = new Map();
  const asked = [];
  const relay = async (action, key, record) => {
    asked.push([action, key]);
    if (action === "save") records.set(key, structuredClone(record));
    else if (action === "delete") records.delete(key);
    return action === "load" ? records.get(key) : undefined;
  };
  return { records, asked, relay };
}

const SAVED = {
  key: uploadKey("pk_1", "tpl_1"),
  importId: "imp_1",
  token: "tok",
  fileName: "big.csv",
  fingerprint: { size: 1, lastModified: 2, sample: "ab" },
  options: {},
  review: { mapping: { email: 0 }, edits: {}, deleted: [] },
  savedAt: 5,
};

test("with IndexedDB the record stays in it and the host page is never asked", async () => {
  const host = hostPage();
  const factory = new IDBFactory();
  const kept = keeper(host.relay, factory);
  await kept.save(SAVED);
  assert.deepEqual(await kept.find(SAVED.key), SAVED);
  assert.deepEqual(await findUpload(SAVED.key, factory), SAVED);
  await kept.forget(SAVED.key);
  assert.equal(await kept.find(SAVED.key), undefined);
  assert.deepEqual(host.asked, []);
});

test("where IndexedDB is refused the host page keeps, gives back and deletes the record", async () => {
  const host = hostPage();
  // A browser that blocks third-party storage: every open fails.
  const refusing = {
    open() {
      const request = {};
      queueMicrotask(() => {
        request.error = new DOMException("The user denied permission to access the database.", "UnknownError");
        request.onerror?.();
      });
      return request;
    },
  };
  const kept = keeper(host.relay, /** @type {any} */ (refusing));
  assert.equal(await kept.find(SAVED.key), undefined);
  await kept.save(SAVED);
  assert.deepEqual(host.records.get(SAVED.key), SAVED);
  assert.deepEqual(await kept.find(SAVED.key), SAVED);
  await kept.forget(SAVED.key);
  assert.equal(host.records.size, 0);
  assert.deepEqual(host.asked, [
    ["load", SAVED.key],
    ["save", SAVED.key],
    ["load", SAVED.key],
    ["delete", SAVED.key],
  ]);
  // An open that throws (no IndexedDB at all) is refused the same way.
  const throwing = keeper(host.relay, /** @type {any} */ ({ open: () => { throw new DOMException("denied", "SecurityError"); } }));
  await throwing.save(SAVED);
  assert.deepEqual(host.records.get(SAVED.key), SAVED);
});
