// Sending the rows, then following the import until the server says it is over.
import { api, sleep } from "../api.js";
import { formatNumber, plural, t } from "../i18n/index.js";
import { watchImport } from "../status.js";
import { showReview } from "./review.js";
import { anotherFile } from "./start.js";
import { el, render, showError, step } from "./shell.js";

/** @typedef {import("./shell.js").Context} Context */
/** @typedef {import("../types.js").ImportState} ImportState */
/** @typedef {import("../i18n/index.js").MessageKey} MessageKey */

/**
 * What the user reads once the import is over: the status the server reports.
 * @param {ImportState} state
 * @param {number} rows
 * @param {number} [deleted] rows the user deleted during review
 */
export function doneText(state, rows, deleted = 0) {
  const key = /** @type {MessageKey} */ (`done.${state.status}`);
  let text;
  if (state.status === "delivered" || state.status === "complete") text = plural("done.summary", rows);
  else {
    try {
      text = t(key, { rows, status: state.status });
    } catch {
      text = t("done.other", { rows, status: state.status });
    }
  }
  const leftOut = [];
  if (state.left_out) leftOut.push(plural("done.leftOutInvalid", state.left_out));
  if (deleted) leftOut.push(plural("done.leftOutDeleted", deleted));
  return [text, ...leftOut].join(" ");
}

/**
 * A link that downloads the rows the import left out, as the engine writes them (CSV, cells
 * escaped against formulas), if it left any out.
 * @param {Context} ctx
 * @param {File} file
 * @param {number} count
 */
async function rejectedDownload(ctx, file, count) {
  if (!count) return null;
  const header = JSON.stringify([t("done.rowHeading"), t("done.reasonHeading")]);
  /** @type {string} */
  const csv = await ctx.engine.call("rejected_csv", [header, t("done.deletedReason")]);
  const url = URL.createObjectURL(new Blob(["\ufeff", csv], { type: "text/csv;charset=utf-8" }));
  const name = `${file.name.replace(/\.[^.]*$/, "")}-left-out.csv`;
  return el("a", { id: "download-rejected", class: "button", href: url, download: name, text: t("done.download") });
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
  step(ctx, "submitting");
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
      { id: "back", text: t("upload.backToReview"), onclick: () => backToReview(ctx, file, described, summary) },
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
    step(ctx, "done");
    render(ctx, el("p", { id: "done", class: "error", "data-status": "unavailable", text: /** @type {Error} */ (error).message }));
    return;
  }
  const deleted = summary.deleted ?? 0;
  // Rows the policy left out (state.left_out counts what the server saw) and rows deleted.
  const download = await rejectedDownload(ctx, file, (summary.left_out ?? 0) + deleted).catch(() => null);
  const done = el("p", { id: "done", tabindex: "-1", "data-status": state.status, text: doneText(state, summary.sent, deleted) });
  const again = anotherFile(ctx);
  step(ctx, "done");
  render(ctx, done, download, el("button", { id: again.id, class: "secondary", text: again.text, onclick: again.onclick }));
  done.focus();
  ctx.notify({ type: "loadbay:complete", importId, rows: summary.sent, status: state.status });
}

/**
 * Back from sending (an error, or the host page's cap) to the review screen.
 * @param {Context} ctx
 * @param {File} file
 * @param {import("../types.js").OpenedFile} described
 * @param {import("../types.js").Summary} summary
 */
function backToReview(ctx, file, described, summary) {
  step(ctx, "review");
  showReview(ctx, file, described, summary);
}

// --- the host-page destination (destinations/host_page.py): its cap, and the hand-off ----

/**
 * What to say when `rows` are more than the template's host-page destination may be handed
 * (its `max_rows`); null when they fit or there is none. The review screen says it before
 * Submit, and submit checks again before anything is sent.
 * @param {import("../types.js").PageConfig} config
 * @param {number} rows
 * @returns {string | null}
 */
export function hostPageCapMessage(config, rows) {
  const cap = config.hostPage?.maxRows;
  if (cap == null || rows <= cap) return null;
  return t("hostPage.tooMany", { rows: formatNumber(rows), max: formatNumber(cap) });
}

/**
 * Say so, before anything is sent, when the rows are more than the host page may be handed.
 * @param {Context} ctx
 * @param {File} file
 * @param {import("../types.js").OpenedFile} described
 * @param {import("../types.js").Summary} summary
 * @returns {boolean} true when over the cap (the screen says so)
 */
function overHostPageCap(ctx, file, described, summary) {
  const over = hostPageCapMessage(ctx.config, summary.sent);
  if (over === null) return false;
  showError(ctx, over, [
    { id: "back", text: t("upload.backToReview"), onclick: () => backToReview(ctx, file, described, summary) },
  ]);
  step(ctx, "over-host-page-cap");
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
  status.textContent = t("hostPage.handing", { rows: formatNumber(handed.total) });
  const acknowledged = host.acknowledged(importId);
  host.send("data", handed);
  status.textContent = t("hostPage.waiting");
  await acknowledged;
  await api(`/api/v1/imports/${importId}/handoff/ack`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" }, token);
}
