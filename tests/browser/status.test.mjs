// Polling an import's status: the server's `final` decides, a 4xx ends it, nothing loops forever.
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError } from "../../browser/src/errors.js";
import { isFinal, watchImport } from "../../browser/src/status.js";

const state = (status, extra = {}) => ({ id: "imp_1", status, rows: 3, batches: 1, deliveries: {}, ...extra });

/** fetchState answering `answers` in turn (an Error is thrown), counting calls. */
function server(answers) {
  const calls = { count: 0 };
  const fetchState = async () => {
    const answer = answers[Math.min(calls.count++, answers.length - 1)];
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { fetchState, calls };
}
const noSleep = async () => {};

test("final: true stops polling whatever the status is called", async () => {
  for (const status of ["expired", "deleted", "failed", "delivered", "complete", "cancelled"]) {
    const { fetchState, calls } = server([state("delivering", { final: false }), state(status, { final: true })]);
    const done = await watchImport({ fetchState, sleep: noSleep });
    assert.equal(done.status, status);
    assert.equal(calls.count, 2);
  }
});

test("final: false keeps polling even for a status that used to end it", async () => {
  const { fetchState, calls } = server([
    state("delivered", { final: false }),
    state("delivered", { final: false }),
    state("delivered", { final: true }),
  ]);
  const updates = [];
  await watchImport({ fetchState, sleep: noSleep, onUpdate: (s) => updates.push(s.status) });
  assert.equal(calls.count, 3);
  assert.deepEqual(updates, ["delivered", "delivered"]);
});

test("a final submit answer needs no poll", async () => {
  const { fetchState, calls } = server([state("queued")]);
  const done = await watchImport({ fetchState, sleep: noSleep, initial: state("failed", { final: true }) });
  assert.equal(done.status, "failed");
  assert.equal(calls.count, 0);
});

test("a 4xx answer (expired, deleted: 401, 404) ends polling at once with the server's message", async () => {
  for (const status of [401, 404, 410]) {
    const { fetchState, calls } = server([new ApiError("This import no longer exists.", status)]);
    await assert.rejects(watchImport({ fetchState, sleep: noSleep, initial: state("delivering", { final: false }) }), {
      message: "This import no longer exists.",
    });
    assert.equal(calls.count, 1);
  }
});

test("5xx and network failures are retried with backoff, a bounded number of times", async () => {
  const waits = [];
  const sleep = async (ms) => void waits.push(ms);
  const flaky = server([new ApiError("busy", 502), new TypeError("network"), state("x", { final: true })]);
  assert.equal((await watchImport({ fetchState: flaky.fetchState, sleep })).status, "x");
  assert.deepEqual(waits, [500, 1000, 2000]);

  const down = server([new ApiError("down", 500)]);
  await assert.rejects(watchImport({ fetchState: down.fetchState, sleep: noSleep }), { message: "down" });
  assert.equal(down.calls.count, 10);
});

test("only the server's final decides; a status name alone never ends polling", () => {
  assert.equal(isFinal(state("delivered")), false);
  assert.equal(isFinal(state("delivering")), false);
  assert.equal(isFinal(state("expired", { final: true })), true);
  assert.equal(isFinal(state("failed", { final: false })), false);
});
