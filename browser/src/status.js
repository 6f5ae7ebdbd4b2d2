// Following an import after submit: the server says when it is over (`final`), the page
// only asks again until then.
import { ApiError } from "./errors.js";

/** @typedef {import("./types.js").ImportState} ImportState */

/**
 * Whether the server is done with this import: it says so in every status answer.
 * @param {ImportState} state
 */
export function isFinal(state) {
  return state.final === true;
}

export const POLL_MS = 500;
const MAX_BACKOFF_MS = 10_000;
const MAX_FAILURES = 10;

/**
 * Ask for the import's state until it is final and return that state. A 4xx answer (the
 * import expired, was deleted, or the token no longer holds) ends it at once with the
 * server's error; a 5xx or a network failure is retried with backoff, a bounded number of times.
 * @param {object} how
 * @param {() => Promise<ImportState>} how.fetchState
 * @param {(ms: number) => Promise<void>} how.sleep
 * @param {(state: ImportState) => void} [how.onUpdate]
 * @param {ImportState | null} [how.initial] the submit answer, judged before the first poll
 * @returns {Promise<ImportState>}
 */
export async function watchImport({ fetchState, sleep, onUpdate, initial = null }) {
  let state = initial;
  let failures = 0;
  for (;;) {
    if (state) {
      if (isFinal(state)) return state;
      if (onUpdate) onUpdate(state);
    }
    await sleep(failures ? Math.min(POLL_MS * 2 ** failures, MAX_BACKOFF_MS) : POLL_MS);
    try {
      state = await fetchState();
      failures = 0;
    } catch (error) {
      if (error instanceof ApiError && error.status >= 400 && error.status < 500) throw error;
      if (++failures >= MAX_FAILURES) throw error;
    }
  }
}
