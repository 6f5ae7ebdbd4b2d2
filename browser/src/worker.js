// The page's side of the worker: one request, one answer, progress in between.

/** @typedef {import("./types.js").Progress} Progress */
/** @typedef {(progress: Progress) => void} OnProgress */

export class Engine {
  /** @param {Worker} worker */
  constructor(worker) {
    this.worker = worker;
    this.nextId = 0;
    /** @type {Map<number, {resolve: (value: any) => void, reject: (error: Error) => void, onProgress?: OnProgress}>} */
    this.pending = new Map();
    worker.onmessage = (event) => this.receive(event.data);
  }

  /** @param {{id: number, progress?: Progress, ok?: boolean, value?: unknown, error?: string}} message */
  receive({ id, progress, ok, value, error }) {
    const entry = this.pending.get(id);
    if (!entry) return;
    if (progress) {
      if (entry.onProgress) entry.onProgress(progress);
      return;
    }
    this.pending.delete(id);
    if (ok) entry.resolve(value);
    else entry.reject(new Error(error));
  }

  /**
   * @param {string} type "boot", "open", "call" or "upload"
   * @param {unknown} payload
   * @param {OnProgress} [onProgress]
   * @returns {Promise<any>}
   */
  ask(type, payload, onProgress) {
    const id = ++this.nextId;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, type, payload });
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
