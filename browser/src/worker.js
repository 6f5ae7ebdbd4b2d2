// The page's side of one worker: one request, one answer, progress in between.

import { t } from "./i18n/index.js";

/** @typedef {import("./types.js").Progress} Progress */
/** @typedef {(progress: Progress) => void} OnProgress */

/** The engine in the worker died (a panic, memory exhausted): the worker must be replaced. */
export class EngineCrash extends Error {}

export class Engine {
  /**
   * @param {Worker} worker
   * @param {(detail: string) => void} [onCrash] told once when the worker's engine dies
   * @param {import("./resume.js").Relay} [relay] the page's answer to the worker's requests for resume records
   */
  constructor(worker, onCrash, relay) {
    this.worker = worker;
    this.relay = relay;
    this.nextId = 0;
    this.dead = false;
    this.onCrash = onCrash;
    /** @type {Map<number, {resolve: (value: any) => void, reject: (error: Error) => void, onProgress?: OnProgress}>} */
    this.pending = new Map();
    worker.onmessage = (event) => this.receive(event.data);
    // An error nothing in the worker caught: its engine is in an unknown state.
    worker.onerror = (event) => {
      event.preventDefault();
      this.crashed(event.message || "the worker failed");
    };
  }

  /** @param {{id: number, progress?: Progress, ok?: boolean, value?: unknown, error?: string, fatal?: boolean, keep?: any}} message */
  receive({ id, progress, ok, value, error, fatal, keep }) {
    if (keep) {
      this.keep(keep);
      return;
    }
    const entry = this.pending.get(id);
    if (!entry) return;
    if (progress) {
      if (entry.onProgress) entry.onProgress(progress);
      return;
    }
    this.pending.delete(id);
    if (ok) entry.resolve(value);
    else if (fatal) {
      entry.reject(new EngineCrash(error));
      this.crashed(error || "");
    } else entry.reject(new Error(error));
  }

  /**
   * The worker asks the page to keep, give back or delete a resume record (src/resume.js).
   * @param {{request: number, action: "load" | "save" | "delete", key: string, record?: import("./resume.js").SavedUpload}} keep
   */
  keep({ request, action, key, record }) {
    const asked = this.relay ? this.relay(action, key, record) : Promise.reject(new Error("nowhere to keep resume records"));
    asked.then(
      (kept) => this.worker.postMessage({ kept: request, ok: true, record: kept ?? null }),
      (/** @type {Error} */ e) => this.worker.postMessage({ kept: request, ok: false, error: e.message }),
    );
  }

  /** @param {string} detail */
  crashed(detail) {
    if (this.dead) return;
    this.dead = true;
    this.worker.terminate();
    for (const entry of this.pending.values()) entry.reject(new EngineCrash(detail));
    this.pending.clear();
    if (this.onCrash) this.onCrash(detail);
  }

  /**
   * @param {string} type "boot", "open", "call", "plan", "part" or "upload"
   * @param {unknown} payload
   * @param {OnProgress} [onProgress]
   * @param {Transferable[]} [transfer] buffers handed to the worker, not copied
   * @returns {Promise<any>}
   */
  ask(type, payload, onProgress, transfer = []) {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      if (this.dead) {
        reject(new EngineCrash("the engine was stopped"));
        return;
      }
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, type, payload }, transfer);
    });
  }

  /**
   * A pipeline.bridge function by name.
   * @param {string} name
   * @param {unknown[]} args
   * @param {OnProgress} [onProgress]
   */
  call(name, args = [], onProgress) {
    return this.ask("call", { name, args }, onProgress);
  }
}

/**
 * An Engine that replaces its worker when the engine in it dies, boots the new one as the
 * first was booted, and turns the crash into the message the user can act on. The screens
 * use it as they use an Engine.
 */
export class RestartingEngine {
  /**
   * @param {() => Worker} spawn
   * @param {(message: string) => void} onRestart told each time a dead engine was replaced
   * @param {import("./resume.js").Relay} [relay] as Engine's
   */
  constructor(spawn, onRestart, relay) {
    this.spawn = spawn;
    this.relay = relay;
    this.onRestart = onRestart;
    /** @type {unknown} */
    this.bootPayload = null;
    /** @type {Promise<unknown>} */
    this.booted = Promise.resolve();
    this.engine = this.start();
  }

  start() {
    const engine = new Engine(
      this.spawn(),
      () => {
        this.engine = this.start();
        this.onRestart(t("error.engineRestarted"));
      },
      this.relay,
    );
    if (this.bootPayload) this.booted = engine.ask("boot", this.bootPayload);
    return engine;
  }

  /**
   * As Engine.ask; "boot" is remembered, so a replacement engine boots the same way.
   * @param {string} type
   * @param {unknown} payload
   * @param {OnProgress} [onProgress]
   * @param {Transferable[]} [transfer]
   */
  async ask(type, payload, onProgress, transfer) {
    if (type === "boot") {
      this.bootPayload = payload;
      this.booted = this.engine.ask("boot", payload, onProgress);
      return this.booted;
    }
    await this.booted;
    return this.answer(this.engine.ask(type, payload, onProgress, transfer));
  }

  /**
   * As Engine.call.
   * @param {string} name
   * @param {unknown[]} args
   * @param {OnProgress} [onProgress]
   */
  async call(name, args = [], onProgress) {
    await this.booted;
    return this.answer(this.engine.call(name, args, onProgress));
  }

  /**
   * @template T
   * @param {Promise<T>} asked
   */
  async answer(asked) {
    try {
      return await asked;
    } catch (error) {
      if (error instanceof EngineCrash) throw new Error(t("error.engineRestarted"), { cause: error });
      throw error;
    }
  }
}
