// Upload: a submit answered 503 is retried after Retry-After; batches are not sent twice;
// every batch carries its Content-Digest; a resumed upload sends only what the server lacks.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { gunzipSync } from "node:zlib";
import { test } from "node:test";

import { ApiError } from "../../browser/src/errors.js";
import { contentDigest, gzip, upload } from "../../browser/src/upload.js";

const request = {
  publishableKey: "pk",
  templateId: "tpl",
  fileName: "f.csv",
  rows: 3,
  headers: ["a"],
  mapping: { a: "a" },
};

function fakeServer({ busySubmits = 0, held = [], status = "uploading", heldError = null } = {}) {
  const calls = [];
  const bodies = [];
  let submits = 0;
  const api = async (path, init, token) => {
    calls.push([init.method ?? "GET", path, token ?? null]);
    if (init.method === "PUT") bodies.push([init.headers["content-digest"], init.body]);
    if (path === "/api/v1/imports") return { id: "imp_1", uploadToken: "tok" };
    if (path.includes("/batches?start=")) {
      if (heldError) throw heldError;
      const start = Number(path.split("=")[1]);
      const page = held.filter((seq) => seq >= start).slice(0, 1); // one a page: paging is followed
      const rest = held.filter((seq) => seq > (page[0] ?? Infinity));
      return { status, batches: page, next: rest.length ? rest[0] : null };
    }
    if (path.endsWith("/submit") && ++submits <= busySubmits) throw new ApiError("The queue is down.", 503, 4);
    if (path.endsWith("/submit")) return { id: "imp_1", status: "queued", final: false };
    return {};
  };
  return { api, calls, bodies };
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

const sha256 = (bytes) => `sha-256=:${createHash("sha256").update(bytes).digest("base64")}:`;

test("each batch carries the RFC 9530 digest of the gzip body it sends", async () => {
  const { api, bodies } = fakeServer();
  const realDeps = { ...deps(api, () => {}), compress: gzip };
  await upload(request, realDeps);
  assert.equal(bodies.length, 2);
  for (const [[digest, body], [offset, length]] of bodies.map((b, i) => [b, [[0, 2], [2, 1]][i]])) {
    assert.equal(digest, sha256(body)); // over the bytes as sent, not the inflated content
    assert.deepEqual([...gunzipSync(body)], [offset, length]);
  }
  assert.equal(await contentDigest(new TextEncoder().encode("abc")), "sha-256=:ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=:");
});

test("the import is kept before its first batch is sent", async () => {
  const { api, calls } = fakeServer();
  const kept = [];
  await upload(request, {
    ...deps(api, () => {}),
    created: async (id, token) => void kept.push([id, token, calls.length]),
  });
  assert.deepEqual(kept, [["imp_1", "tok", 1]]); // after POST /imports, before any PUT
});

const plan4 = () => [0, 1, 2, 3].map((i) => ({ offset: i * 2, length: 2, first_row: 2 + i * 2 }));

test("a resumed upload sends only the batches the server lacks, then submits", async () => {
  const { api, calls } = fakeServer({ held: [0, 2] });
  const reports = [];
  const created = [];
  const uploaded = await upload(
    { ...request, rows: 8, resume: { importId: "imp_9", token: "tok9" } },
    { ...deps(api, (...r) => reports.push(r)), plan: plan4, created: async (...a) => void created.push(a) },
  );
  assert.equal(uploaded.importId, "imp_9");
  assert.deepEqual(created, []); // nothing new was created
  assert.deepEqual(
    calls.map(([method, path, token]) => `${method} ${path} ${token}`),
    [
      "GET /api/v1/imports/imp_9/batches?start=0 tok9",
      "GET /api/v1/imports/imp_9/batches?start=2 tok9",
      "PUT /api/v1/imports/imp_9/batches/1?first_row=4 tok9",
      "PUT /api/v1/imports/imp_9/batches/3?first_row=8 tok9",
      "POST /api/v1/imports/imp_9/submit tok9",
      "POST /api/v1/templates/tpl/mappings tok9",
    ],
  );
  assert.deepEqual(reports.map((r) => r.join(" ")), ["upload 1 4", "upload 2 4", "upload 3 4", "upload 4 4"]);
});

test("a resumed upload that was already submitted only submits again", async () => {
  const { api, calls } = fakeServer({ held: [0, 1, 2, 3], status: "delivering" });
  await upload({ ...request, resume: { importId: "imp_9", token: "tok9" } }, { ...deps(api, () => {}), plan: plan4 });
  assert.equal(calls.filter(([method]) => method === "PUT").length, 0);
  assert.equal(calls.filter(([, path]) => path.endsWith("/submit")).length, 1);
});

test("a resumed import the server no longer knows starts a new one", async () => {
  const { api, calls } = fakeServer({ heldError: new ApiError("This upload link is not valid.", 401) });
  const uploaded = await upload({ ...request, resume: { importId: "imp_old", token: "old" } }, deps(api, () => {}));
  assert.equal(uploaded.importId, "imp_1");
  assert.deepEqual(calls.slice(0, 3).map(([m, p]) => `${m} ${p}`), [
    "GET /api/v1/imports/imp_old/batches?start=0",
    "POST /api/v1/imports",
    "PUT /api/v1/imports/imp_1/batches/0?first_row=2",
  ]);
});

test("a batch that leaves invalid rows out says how many", async () => {
  const { api, calls } = fakeServer();
  const plan = () => [
    { offset: 0, length: 2, first_row: 2, left_out: 0 },
    { offset: 2, length: 1, first_row: 6, left_out: 2 },
  ];
  await upload(request, { ...deps(api, () => {}), plan });
  assert.deepEqual(
    calls.filter(([method]) => method === "PUT").map(([, path]) => path),
    ["/api/v1/imports/imp_1/batches/0?first_row=2", "/api/v1/imports/imp_1/batches/1?first_row=6&left_out=2"],
  );
});
