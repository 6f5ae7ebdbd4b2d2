// The API client: errors keep the HTTP status and Retry-After; a 503 is waited out, boundedly.
import assert from "node:assert/strict";
import { test } from "node:test";

import { api, BUSY_TRIES, retryAfterSeconds, whileBusy } from "../../browser/src/api.js";
import { ApiError } from "../../browser/src/errors.js";

test("Retry-After in seconds or as an HTTP date", () => {
  const now = Date.parse("2026-12-01T10:00:00Z");
  assert.equal(retryAfterSeconds("7", now), 7);
  assert.equal(retryAfterSeconds("Tue, 01 Dec 2026 10:00:30 GMT", now), 30);
  assert.equal(retryAfterSeconds("Tue, 01 Dec 2026 09:00:00 GMT", now), 0);
  assert.equal(retryAfterSeconds(null, now), null);
  assert.equal(retryAfterSeconds("soon", now), null);
});

test("a non-2xx answer throws ApiError with the server's message, status and Retry-After", async () => {
  const fetchImpl = async () =>
    new Response(JSON.stringify({ error: { code: "unavailable", message: "The queue is down." } }), {
      status: 503,
      headers: { "retry-after": "3" },
    });
  await assert.rejects(api("/api/v1/imports/x/submit", {}, "tok", fetchImpl), (error) => {
    assert.ok(error instanceof ApiError);
    assert.deepEqual([error.message, error.status, error.retryAfter], ["The queue is down.", 503, 3]);
    return true;
  });
});

test("the request carries the bearer token and never cookies", async () => {
  let seen;
  const fetchImpl = async (path, init) => {
    seen = init;
    return new Response("{}", { status: 200 });
  };
  await api("/x", { headers: { "content-type": "application/json" } }, "tok", fetchImpl);
  assert.equal(seen.credentials, "omit");
  assert.deepEqual(seen.headers, { "content-type": "application/json", authorization: "Bearer tok" });
});

test("a body without an error message still says what the server answered", async () => {
  const fetchImpl = async () => new Response("<html>", { status: 502 });
  await assert.rejects(api("/x", {}, undefined, fetchImpl), { message: "The server answered 502." });
});

test("whileBusy waits what Retry-After says and tries again", async () => {
  const waits = [];
  const told = [];
  let calls = 0;
  const result = await whileBusy(
    async () => {
      if (++calls < 3) throw new ApiError("busy", 503, 2);
      return "submitted";
    },
    { sleep: async (ms) => void waits.push(ms), onWait: (seconds, attempt) => told.push([seconds, attempt]) },
  );
  assert.equal(result, "submitted");
  assert.deepEqual(waits, [2000, 2000]);
  assert.deepEqual(told, [[2, 1], [2, 2]]);
});

test("whileBusy gives up after a bounded number of tries and throws the last answer", async () => {
  let calls = 0;
  const busy = async () => {
    calls++;
    throw new ApiError("still busy", 503, 9999);
  };
  const waits = [];
  await assert.rejects(whileBusy(busy, { sleep: async (ms) => void waits.push(ms) }), { message: "still busy" });
  assert.equal(calls, BUSY_TRIES);
  assert.ok(waits.every((ms) => ms === 60_000), "a huge Retry-After is capped");
});

test("whileBusy does not retry anything but a 503", async () => {
  for (const error of [new ApiError("bad", 422), new ApiError("gone", 404), new TypeError("network")]) {
    let calls = 0;
    const failing = async () => {
      calls++;
      throw error;
    };
    await assert.rejects(whileBusy(failing, { sleep: async () => {} }), error);
    assert.equal(calls, 1);
  }
});
