// An engine that dies is replaced: the worker is terminated, a new one booted as the first
// was, the pending request answered with the message the user can act on, the page told.
import assert from "node:assert/strict";
import { test } from "node:test";

import { t } from "../../browser/src/i18n/index.js";
import { RestartingEngine } from "../../browser/src/worker.js";

/** A worker stand-in answering as browser/worker.mjs does; `crash` makes "open" fatal. */
class FakeWorker {
  constructor({ crash = false } = {}) {
    this.crash = crash;
    this.terminated = false;
    /** @type {string[]} */
    this.seen = [];
    this.onmessage = null;
    this.onerror = null;
  }
  postMessage({ id, type }) {
    this.seen.push(type);
    queueMicrotask(() => {
      if (type === "open" && this.crash) {
        this.onmessage({ data: { id, ok: false, fatal: true, error: "RuntimeError: unreachable" } });
      } else this.onmessage({ data: { id, ok: true, value: `${type} done` } });
    });
  }
  terminate() {
    this.terminated = true;
  }
}

test("a fatal answer replaces the worker, boots the new one and tells the page", async () => {
  const workers = [new FakeWorker({ crash: true }), new FakeWorker()];
  let next = 0;
  const told = [];
  const engine = new RestartingEngine(() => workers[next++], (m) => told.push(m));
  assert.equal(await engine.ask("boot", { pyodide: "x" }), "boot done");
  await assert.rejects(engine.ask("open", {}), { message: t("error.engineRestarted") });
  assert.equal(workers[0].terminated, true);
  assert.deepEqual(told, [t("error.engineRestarted")]);
  assert.equal(await engine.ask("open", {}), "open done"); // the new engine, booted first
  assert.deepEqual(workers[1].seen, ["boot", "open"]);
});

test("an error nothing in the worker caught counts as a crash too", async () => {
  const workers = [new FakeWorker(), new FakeWorker()];
  let next = 0;
  const told = [];
  const engine = new RestartingEngine(() => workers[next++], (m) => told.push(m));
  await engine.ask("boot", {});
  workers[0].onerror({ message: "panic", preventDefault() {} });
  assert.equal(workers[0].terminated, true);
  assert.equal(told.length, 1);
  assert.equal(await engine.call("summary"), "call done");
  assert.deepEqual(workers[1].seen, ["boot", "call"]);
});
