// Upload: a submit answered 503 is retried after Retry-After; batches are not sent twice.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError } from "../../browser/src/errors.js";
import { upload } from "../../browser/src/upload.js";

const request = {
  publishableKey: "pk",
  templateId: "tpl",
  fileName: "f.csv",
  rows: 3,
  headers: ["a"],
  mapping: { a: "a" },
};

function fakeServer({ busySubmits }) {
  const calls = [];
  let submits = 0;
  const api = async (path, init, token) => {
    calls.push([init.method, path, token ?? null]);
    if (path === "/api/v1/imports") return { id: "imp_1", uploadToken: "tok" };
    if (path.endsWith("/submit") && ++submits <= busySubmits) throw new ApiError("The queue is down.", 503, 4);
    if (path.endsWith("/submit")) return { id: "imp_1", status: "queued", final: false };
    return {};
  };
  return { api, calls };
}

const deps = (api, progress, sleep = async () => {}) => ({
  plan: () => [
    { offset: 0, length: 2, first_row: 2 },
    { offset: 2, length: 1, first_row: 4 },
  ],
  encode: (offset, length) => new Uint8Array([offset, length]),
  compress: async (bytes) => bytes,
  progress,
  api,
  sleep,
});

test("a busy submit is retried after Retry-After, telling the page how long it waits", async () => {
  const { api, calls } = fakeServer({ busySubmits: 2 });
  const reports = [];
  const waits = [];
  const uploaded = await upload(
    request,
    deps(api, (...report) => reports.push(report), async (ms) => void waits.push(ms)),
  );
  assert.deepEqual(uploaded, { importId: "imp_1", token: "tok", state: { id: "imp_1", status: "queued", final: false } });
  assert.deepEqual(
    calls.map(([method, path]) => `${method} ${path}`),
    [
      "POST /api/v1/imports",
      "PUT /api/v1/imports/imp_1/batches/0?first_row=2",
      "PUT /api/v1/imports/imp_1/batches/1?first_row=4",
      "POST /api/v1/imports/imp_1/submit",
      "POST /api/v1/imports/imp_1/submit",
      "POST /api/v1/imports/imp_1/submit",
      "POST /api/v1/templates/tpl/mappings",
    ],
  );
  assert.deepEqual(waits, [4000, 4000]);
  assert.deepEqual(reports, [
    ["upload", 1, 2],
    ["upload", 2, 2],
    ["busy", 4, 0],
    ["busy", 4, 0],
  ]);
});

test("a submit still busy after five tries fails with the server's message", async () => {
  const { api, calls } = fakeServer({ busySubmits: 99 });
  await assert.rejects(upload(request, deps(api, () => {})), { message: "The queue is down.", status: 503 });
  assert.equal(calls.filter(([, path]) => path.endsWith("/submit")).length, 5);
});
