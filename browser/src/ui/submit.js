// Sending the rows, then following the import until the server says it is over.
import { api, sleep } from "../api.js";
import { t } from "../i18n/index.js";
import { watchImport } from "../status.js";
import { showReview } from "./review.js";
import { el, render, showError } from "./shell.js";

/** @typedef {import("./shell.js").Context} Context */
/** @typedef {import("../types.js").ImportState} ImportState */
/** @typedef {import("../i18n/index.js").MessageKey} MessageKey */

/**
 * What the user reads once the import is over: the status the server reports.
 * @param {ImportState} state
 * @param {number} rows
 */
export function doneText(state, rows) {
  const key = /** @type {MessageKey} */ (`done.${state.status}`);
  const leftOut = state.left_out ? t("done.leftOut", { count: state.left_out }) : "";
  try {
    return t(key, { rows, status: state.status }) + leftOut;
  } catch {
    return t("done.other", { rows, status: state.status }) + leftOut;
  }
}

/**
 * @param {Context} ctx
 * @param {File} file
 * @param {import("../types.js").OpenedFile} described
 * @param {import("../types.js").Summary} summary
 * @param {{resumable?: boolean}} [how] carry on the interrupted upload kept for this file
 */
export async function submit(ctx, file, described, summary, { resumable = false } = {}) {
  const { config } = ctx;
  if (overHostPageCap(ctx, file, described, summary)) return;
  const bar = el("progress", { id: "upload-progress", max: "1", value: "0" });
  const status = el("p", { id: "upload-status", text: t(resumable ? "upload.resuming" : "upload.start") });
  render(ctx, status, bar);
  const request = {
    publishableKey: config.publishableKey,
    templateId: config.templateId,
    fileName: file.name,
    rows: summary.sent, // what the policy sends: the server checks it against what it holds
    headers: described.headers,
    mapping: described.confirmed,
    options: described.options,
    headerConfirmed: described.headerConfirmed,
    resumable,
    identity: ctx.host?.options().identity || undefined,
  };
  /** @type {import("../types.js").Uploaded} */
  let uploaded;
  try {
    uploaded = await ctx.engine.ask("upload", request, ({ phase, done, total }) => {
      if (phase === "busy") {
        status.textContent = t("upload.busy", { seconds: done });
        return;
      }
      bar.max = total;
      bar.value = done;
      status.textContent = t("upload.batches", { done, total });
    });
  } catch (error) {
    // Nothing the user did is lost: the file and every edit are still in the worker.
    showError(ctx, /** @type {Error} */ (error).message, [
      {
        id: "upload-retry",
        text: t("upload.retry"),
        onclick: () => submit(ctx, file, described, summary, { resumable: true }),
      },
      { id: "back", text: t("upload.backToReview"), onclick: () => showReview(ctx, file, described, summary) },
    ]);
    return;
  }
  status.textContent = t("upload.delivering");
  const { importId, token } = uploaded;
  let state;
  try {
    if (config.hostPage && ctx.host) await handToPage(ctx.host, importId, token, status);
    state = await watchImport({
      initial: uploaded.state,
      fetchState: () => api(`/api/v1/imports/${importId}`, {}, token),
      sleep,
      onUpdate: (s) => {
        status.textContent = t("upload.deliveringCount", { delivered: s.deliveries.delivered ?? 0, batches: s.batches });
      },
    });
  } catch (error) {
    render(ctx, el("p", { id: "done", class: "error", "data-status": "unavailable", text: /** @type {Error} */ (error).message }));
    return;
  }
  render(ctx, el("p", { id: "done", "data-status": state.status, text: doneText(state, summary.sent) }));
  ctx.notify({ type: "loadbay:complete", importId, rows: summary.sent, status: state.status });
}

// --- the host-page destination (destinations/host_page.py): its cap, and the hand-off ----

/**
 * Say so, before anything is sent, when the rows are more than the host page may be handed.
 * @param {Context} ctx
 * @param {File} file
 * @param {import("../types.js").OpenedFile} described
 * @param {import("../types.js").Summary} summary
 * @returns {boolean} true when over the cap (the screen says so)
 */
function overHostPageCap(ctx, file, described, summary) {
  const cap = ctx.config.hostPage?.maxRows;
  if (cap == null || summary.sent <= cap) return false;
  showError(ctx, t("hostPage.tooMany", { rows: summary.sent.toLocaleString("en"), max: cap.toLocaleString("en") }), [
    { id: "back", text: t("upload.backToReview"), onclick: () => showReview(ctx, file, described, summary) },
  ]);
  ctx.host?.send("step", { step: "over-host-page-cap" });
  return true;
}

/**
 * The server's re-validated rows, posted to the page (its validated origin only); once the
 * page acknowledges them, the server marks the host-page deliveries delivered.
 * @param {import("../host.js").Host} host
 * @param {string} importId
 * @param {string} token
 * @param {HTMLElement} status
 */
async function handToPage(host, importId, token, status) {
  /** @type {{importId: string, rows: Record<string, unknown>[], total: number}} */
  const handed = await api(`/api/v1/imports/${importId}/handoff`, {}, token);
  status.textContent = t("hostPage.handing", { rows: handed.total.toLocaleString("en") });
  const acknowledged = host.acknowledged(importId);
  host.send("data", handed);
  status.textContent = t("hostPage.waiting");
  await acknowledged;
  await api(`/api/v1/imports/${importId}/handoff/ack`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }, token);
}
