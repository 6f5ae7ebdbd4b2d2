// Parallel engines: a large CSV read and validated by several workers, each its own Pyodide
// engine (pipeline.chunking cuts, reads and joins; this module only routes). The primary
// engine ends up holding the whole file and its review, exactly as if it had read it alone:
// windows, edits, undo, upload stay on it. Helpers read a byte range each (the primary gets
// its rows and row problems at once), check their rows by the rules of one cell while the
// primary checks its own, then hand their cells to the primary (Arrow IPC in pieces,
// buffers transferred) and are ended at once, so their grown memory is returned before
// the primary's grows; the primary checks the rules across rows over the whole file.
// Fresh engines take their place.

import { Engine } from "./worker.js";

/** Engines at most, the primary included: each idle engine costs the tab its memory. */
export const MAX_ENGINES = 2;

/** @typedef {import("./worker.js").OnProgress} OnProgress */
/** @typedef {import("./worker.js").RestartingEngine} RestartingEngine */

/**
 * @typedef {object} Held the parts of the open file, until its first mapping is validated
 * @property {Engine[]} helpers the engine of each part after the first, in file order
 * @property {number[]} starts the first row (table index) of each part
 * @property {number} rows the table's rows
 * @property {number} firstDataRow
 * @property {Record<string, unknown>} template
 * @property {Engine} primary the primary's engine then (a restarted one holds nothing)
 */

/** Milliseconds since the last call (the first: since it was made). */
function stopwatch() {
  let last = performance.now();
  return () => {
    const now = performance.now();
    const took = now - last;
    last = now;
    return took;
  };
}

/** How many engines this machine gets: min(hardwareConcurrency, MAX_ENGINES). */
export function engineCount(cores = globalThis.navigator?.hardwareConcurrency || 1, most = MAX_ENGINES) {
  return Math.max(1, Math.min(cores, most));
}

/**
 * The screens' engine (as a RestartingEngine: ask, call), with helper engines behind it.
 */
export class ParallelEngine {
  /**
   * @param {RestartingEngine} primary
   * @param {() => Worker} spawn a helper: the same worker module as the primary's
   * @param {number} engines how many engines in all (engineCount())
   */
  constructor(primary, spawn, engines) {
    this.primary = primary;
    this.spawn = spawn;
    this.wanted = Math.max(0, engines - 1);
    /** @type {{engine: Engine, ready: boolean}[]} */
    this.helpers = [];
    /** @type {unknown} */
    this.bootPayload = null;
    /** @type {Held | null} */
    this.held = null;
    /** What the last open did, for the bench and the tests: "parts" or "one". */
    this.lastOpen = "";
    /** How long each step of the last open and validation in parts took (ms), for the bench. */
    /** @type {Record<string, number>} */
    this.timings = {};
  }

  get engine() {
    return this.primary.engine;
  }

  /** Helpers are started with the primary, while the user picks a file. */
  fill() {
    while (this.bootPayload && this.helpers.length < this.wanted) {
      const engine = new Engine(this.spawn(), () => this.drop([engine]));
      const helper = { engine, ready: false };
      // A helper that cannot boot is dropped, not replaced: the primary reads alone.
      engine.ask("boot", this.bootPayload).then(
        () => (helper.ready = true),
        () => this.drop([engine]),
      );
      this.helpers.push(helper);
    }
  }

  /** @param {Engine[]} engines helpers to end (crashed, or unable to boot) */
  drop(engines) {
    for (const engine of engines) {
      if (!engine.dead) engine.crashed("replaced");
    }
    this.helpers = this.helpers.filter((h) => !engines.includes(h.engine));
  }

  /** @param {Engine[]} engines helpers whose part was used: fresh ones take their place */
  recycle(engines) {
    this.drop(engines);
    this.fill();
  }

  /** The helpers booted by now (a file picked before they are ready is read by one engine). */
  ready() {
    return this.helpers.filter((h) => h.ready && !h.engine.dead).map((h) => h.engine);
  }

  /**
   * @param {string} type
   * @param {any} payload
   * @param {OnProgress} [onProgress]
   */
  async ask(type, payload, onProgress) {
    if (type === "boot") {
      this.bootPayload = payload;
      const booted = this.primary.ask("boot", payload, onProgress);
      this.fill();
      return booted;
    }
    if (type === "open") return this.open(payload, onProgress);
    this.held = null; // resume and upload: one engine's work
    return this.primary.ask(type, payload, onProgress);
  }

  /**
   * @param {string} name
   * @param {unknown[]} args
   * @param {OnProgress} [onProgress]
   */
  async call(name, args = [], onProgress) {
    const held = this.held;
    if (name === "set_mapping" && held) {
      this.held = null;
      return this.validate(held, /** @type {string} */ (args[0]), onProgress).finally(() => this.recycle(held.helpers));
    }
    if (name === "close_file" && held) {
      this.held = null; // the helpers holding parts of the closed file are replaced
      this.recycle(held.helpers);
    }
    return this.primary.call(name, args, onProgress);
  }

  /**
   * Open the file in parts when the engine says it is worth it; otherwise as one engine.
   * @param {any} payload the "open" request (browser/worker.mjs OpenRequest)
   * @param {OnProgress} [onProgress]
   */
  async open(payload, onProgress) {
    this.held = null;
    const helpers = this.ready();
    if (helpers.length) {
      try {
        const described = await this.openInParts(payload, helpers, onProgress);
        if (described) return described;
      } catch (error) {
        // A part the engines could not read apart (its reason is found again reading whole).
        console.warn("loadbay: reading in parts failed, reading in one engine:", /** @type {Error} */ (error).message);
      }
    }
    this.lastOpen = "one";
    return this.primary.ask("open", payload, onProgress);
  }

  /**
   * @param {any} payload
   * @param {Engine[]} helpers
   * @param {OnProgress} [onProgress]
   */
  async openInParts(payload, helpers, onProgress) {
    const clock = stopwatch();
    /** @type {{head: unknown, bounds: number[]} | null} */
    const plan = await this.primary.ask("plan", { ...payload, parts: helpers.length + 1 });
    if (!plan) return null;
    this.timings = { plan_ms: clock() };
    const { file, template } = payload;
    const head = JSON.stringify(plan.head);
    const bounds = plan.bounds;
    const last = bounds.length - 2;
    const used = helpers.slice(0, last);
    /** @param {number} k */
    const range = (k) => ({ template, name: file.name, head, start: bounds[k], end: bounds[k + 1], last: k === last });
    const [, ...parts] = await Promise.all([
      this.primary.ask("part", range(0)),
      ...used.map((engine, k) => engine.ask("part", { ...range(k + 1), file })),
    ]);
    this.timings.parts_ms = clock();
    this.timings.part_read_ms = Math.max(0, ...parts.map((p) => p.read_ms || 0));
    this.timings.helper_wasm_bytes = Math.max(0, ...parts.map((p) => p.wasm_bytes || 0));
    const request = { ...payload, plan: JSON.stringify(plan), parts: parts.map((p) => ({ rows: p.rows, meta: p.meta })) };
    const joined = await this.primary.ask("join", request, onProgress, parts.map((p) => p.meta.buffer));
    this.timings.join_ms = clock();
    this.timings.joined_wasm_bytes = joined.steps?.wasm_bytes;
    if (joined.starts.length === bounds.length - 1) {
      this.held = {
        helpers: used,
        starts: joined.starts,
        rows: joined.rows,
        firstDataRow: joined.described.first_data_row,
        template,
        primary: this.primary.engine,
      };
    } else {
      this.recycle(used); // ranges merged: the primary validates alone
    }
    this.lastOpen = "parts";
    return joined.described;
  }

  /**
   * The mapping applied and validated: each helper its rows, the primary its own and the
   * rules across rows; the primary's review summary.
   * @param {Held} held
   * @param {string} mapping
   * @param {OnProgress} [onProgress]
   */
  async validate(held, mapping, onProgress) {
    if (held.primary !== this.primary.engine) return this.primary.call("set_mapping", [mapping], onProgress);
    const { starts, rows, firstDataRow, template } = held;
    const clock = stopwatch();
    try {
      const [, ...answers] = await Promise.all([
        this.primary.call("validate_own", [mapping]),
        ...held.helpers.map((engine, k) =>
          engine
            .ask("validate_part", {
              template,
              mapping,
              firstRow: firstDataRow + starts[k + 1],
              rows: (k + 2 < starts.length ? starts[k + 2] : rows) - starts[k + 1],
            })
            // its errors and cells are out: ended now, so its memory is back before the
            // primary takes the cells in (its replacement boots once the review is built)
            .then((answer) => (this.drop([engine]), answer)),
        ),
      ]);
      this.timings.validate_parts_ms = clock();
      Object.assign(this.timings, {
        part_validate_ms: Math.max(0, ...answers.map((a) => a.validate_ms)),
        part_encode_ms: Math.max(0, ...answers.map((a) => a.encode_ms)),
        helper_validated_wasm_bytes: Math.max(0, ...answers.map((a) => a.wasm_bytes || 0)),
      });
      const errors = answers.map((a) => a.errors);
      const cells = answers.map((a) => a.cells);
      const transfer = [...errors.map((e) => e.buffer), ...cells.flat().map((c) => c.buffer)];
      const finished = await this.primary.ask("finish", { errors, cells }, undefined, transfer);
      this.timings.finish_ms = clock();
      this.timings.finished_wasm_bytes = finished.wasm_bytes;
      return finished.summary;
    } catch (error) {
      if (held.primary !== this.primary.engine) throw error; // the primary died: as one engine
      return this.primary.call("set_mapping", [mapping], onProgress);
    }
  }
}
