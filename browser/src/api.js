// The importer API client, used by the page and the worker: JSON in, JSON out, no cookies.
import { ApiError } from "./errors.js";
import { t } from "./i18n/index.js";

/**
 * Seconds a Retry-After header asks for (delta-seconds or an HTTP date), or null.
 * @param {string | null} value
 * @param {number} [now] epoch milliseconds
 * @returns {number | null}
 */
export function retryAfterSeconds(value, now = Date.now()) {
  if (value == null || value.trim() === "") return null;
  if (/^\d+$/.test(value.trim())) return Number(value.trim());
  const at = Date.parse(value);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

/**
 * Call the API; a non-2xx answer throws ApiError with the server's own message.
 * @param {string} path
 * @param {RequestInit} [options]
 * @param {string} [token] bearer token (an import's upload token)
 * @param {typeof fetch} [fetchImpl]
 * @returns {Promise<any>}
 */
export async function api(path, options = {}, token, fetchImpl = fetch) {
  /** @type {Record<string, string>} */
  const headers = { .../** @type {Record<string, string>} */ (options.headers || {}) };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetchImpl(path, { ...options, headers, credentials: "omit" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const message = body?.error?.message || t("error.server", { status: response.status });
    throw new ApiError(message, response.status, retryAfterSeconds(response.headers.get("retry-after")));
  }
  return body;
}

export const BUSY_TRIES = 5;
const DEFAULT_WAIT_S = 5;
const MAX_WAIT_S = 60;

/**
 * Repeat `request` while the server answers 503 (busy: its queue is unreachable), waiting
 * what its Retry-After says, at most `tries` times in all; any other failure is thrown at once.
 * @template T
 * @param {() => Promise<T>} request
 * @param {object} how
 * @param {(ms: number) => Promise<void>} how.sleep
 * @param {(seconds: number, attempt: number) => void} [how.onWait]
 * @param {number} [how.tries]
 * @returns {Promise<T>}
 */
export async function whileBusy(request, { sleep, onWait, tries = BUSY_TRIES }) {
  for (let attempt = 1; ; attempt++) {
    try {
      return await request();
    } catch (error) {
      if (!(error instanceof ApiError) || error.status !== 503 || attempt >= tries) throw error;
      const seconds = Math.min(Math.max(error.retryAfter ?? DEFAULT_WAIT_S, 1), MAX_WAIT_S);
      if (onWait) onWait(seconds, attempt);
      await sleep(seconds * 1000);
    }
  }
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
