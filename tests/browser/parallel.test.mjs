// The coordinator only routes: a large file's parts go to the engines, their cells and
// errors to the primary; anything a helper cannot do is done by the primary alone.
import assert from "node:assert/strict";
import { test } from "node:test";

import { engineCount, ParallelEngine } from "../../browser/src/parallel.js";
import { RestartingEngine } from "../../browser/src/worker.js";

/** A worker stand-in answering as browser/worker.mjs does, by message type. */
class FakeWorker {
  constructor(answers = {}) {
    this.answers = answers;
    this.terminated = false;
    /** @type {{type: string, payload: any}[]} */
    this.seen = [];
    this.onmessage = null;
    this.onerror = null;
  }
  postMessage({ id, type, payload }) {
    const name = type === "call" ? payload.name : type;
    this.seen.push({ type: name, payload });
    queueMicrotask(() => {
      const answer = name in this.answers ? this.answers[name] : `${name} done`;
      if (answer instanceof Error) this.onmessage({ data: { id, ok: false, error: answer.message } });
      else this.onmessage({ data: { id, ok: true, value: typeof answer === "function" ? answer(payload) : answer } });
    });
  }
  terminate() {
    this.terminated = true;
  }
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 0));
const described = { first_data_row: 2, rows: 10 };

function setUp(primaryAnswers, helperAnswers) {
  const primaryWorker = new FakeWorker(primaryAnswers);
  const helpers = [];
  const primary = new RestartingEngine(() => primaryWorker, () => {});
  const engine = new ParallelEngine(primary, () => {
    const worker = new FakeWorker(helperAnswers);
    helpers.push(worker);
    return worker;
  }, 2);
  return { engine, primaryWorker, helpers };
}

test("a large file is read in parts and validated by both engines", async () => {
  const cells = [new Uint8Array([1, 2]), new Uint8Array([4])];
  const errors = new Uint8Array([7]);
  /** @type {boolean[]} */
  const helperEndedBeforeFinish = [];
  const { engine, primaryWorker, helpers } = setUp(
    {
      plan: { head: { name: "f.csv" }, bounds: [10, 50, 90] },
      join: { described, starts: [0, 4], rows: 9 },
      finish: (/** @type {any} */ payload) => {
        helperEndedBeforeFinish.push(helpers[0].terminated);
        assert.deepEqual(payload, { errors: [errors], cells: [cells] });
        return { summary: { rows: 9, error_count: 3 } };
      },
    },
    { part: () => ({ rows: 5, verified: true, meta: new Uint8Array([3]) }), validate_part: { errors, cells } },
  );
  await engine.ask("boot", { pyodide: "x" });
  await settle();
  const file = { name: "f.csv" };
  assert.deepEqual(await engine.ask("open", { file, template: { fields: [] } }), described);
  assert.equal(engine.lastOpen, "parts");
  const part = helpers[0].seen.find((m) => m.type === "part").payload;
  assert.deepEqual([part.start, part.end, part.last, part.file], [50, 90, true, file]);
  const own = primaryWorker.seen.find((m) => m.type === "part").payload;
  assert.deepEqual([own.start, own.end, own.last, own.file], [10, 50, false, undefined]);
  assert.deepEqual(await engine.call("set_mapping", ['{"a": 0}']), { rows: 9, error_count: 3 });
  const check = helpers[0].seen.find((m) => m.type === "validate_part").payload;
  assert.deepEqual([check.firstRow, check.rows, check.mapping], [6, 5, '{"a": 0}']);
  const types = primaryWorker.seen.map((m) => m.type);
  assert.deepEqual(types, ["boot", "plan", "part", "join", "validate_own", "finish"]);
  // the join had the helper's rows and row problems only: its cells came with its errors
  assert.deepEqual(primaryWorker.seen[3].payload.parts, [{ rows: 5, meta: new Uint8Array([3]) }]);
  // and the helper was ended before the primary took them in (its memory back first)
  assert.deepEqual(helperEndedBeforeFinish, [true]);
  // the helper is replaced by a fresh engine (its memory returned); the next mapping is one engine's
  assert.equal(helpers[0].terminated, true);
  assert.equal(helpers.length, 2);
  await engine.call("set_mapping", ['{"a": 1}']);
  assert.equal(primaryWorker.seen.at(-1).type, "set_mapping");
});

test("a small file, or a part a helper cannot read, is read by the primary alone", async () => {
  const small = setUp({ plan: null, open: described }, {});
  await small.engine.ask("boot", {});
  await settle();
  assert.deepEqual(await small.engine.ask("open", { file: { name: "s.csv" } }), described);
  assert.equal(small.engine.lastOpen, "one");
  assert.deepEqual(small.helpers[0].seen.map((m) => m.type), ["boot"]);

  const failing = setUp({ plan: { head: {}, bounds: [1, 5, 9] }, open: described }, { part: new Error("no") });
  await failing.engine.ask("boot", {});
  await settle();
  assert.deepEqual(await failing.engine.ask("open", { file: { name: "f.csv" } }), described);
  assert.deepEqual(failing.primaryWorker.seen.map((m) => m.type), ["boot", "plan", "part", "open"]);
  await failing.engine.call("set_mapping", ["{}"]);
  assert.equal(failing.primaryWorker.seen.at(-1).type, "set_mapping");
});

test("a helper's failed validation leaves it to the primary", async () => {
  const { engine, primaryWorker } = setUp(
    { plan: { head: {}, bounds: [1, 5, 9] }, join: { described, starts: [0, 2], rows: 4 }, set_mapping: "one" },
    { part: { rows: 2, verified: true, meta: new Uint8Array(1) }, validate_part: new Error("x") },
  );
  await engine.ask("boot", {});
  await settle();
  await engine.ask("open", { file: { name: "f.csv" } });
  assert.equal(await engine.call("set_mapping", ["{}"]), "one");
  assert.deepEqual(primaryWorker.seen.map((m) => m.type).slice(-2), ["validate_own", "set_mapping"]);
});

test("as many engines as cores, up to the cap", () => {
  assert.equal(engineCount(1), 1);
  assert.equal(engineCount(2), 2);
  assert.equal(engineCount(16), 2);
  assert.equal(engineCount(16, 4), 4);
});
