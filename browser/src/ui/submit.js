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
