// The first screen: the expected columns and the file input; opening the picked file.
import { fieldsFor } from "../fields.js";
import { formatSize, plural, t } from "../i18n/index.js";
import { keeper, uploadKey } from "../resume.js";
import { showMapping } from "./mapping.js";
import { busy, el, render, showError, showProgress, step } from "./shell.js";
import { submit } from "./submit.js";

/** @typedef {import("./shell.js").Context} Context */

// What the file input offers; the engine judges a file by its bytes whatever its name.
const ACCEPT = ".csv,.tsv,.txt,.xlsx,.xlsm,.xlsb,.xls,.ods,.json,.ndjson,.jsonl";

/** @param {Context} ctx */
export function showStart(ctx) {
  step(ctx, "start");
  const status = el("p", { id: "engine-status", class: "muted", text: t("start.preparing") });
  ctx.booted.then(
    () => (status.textContent = t("start.ready")),
    (/** @type {Error} */ e) => (status.textContent = e.message),
  );
  const input = el("input", { id: "file-input", type: "file", accept: ctx.config.accept ?? ACCEPT });
  const inputLabel = el("label", { for: "file-input", class: "file-label", text: t("start.fileLabel") });
  // An upload interrupted here before (reload, closed tab, lost connection) is carried on
  // when the user picks the same file again; only the batches the server lacks are sent.
  const note = el("p", { id: "resume-note", class: "muted", hidden: "" });
  const kept = keeper(ctx.host ? ctx.host.relay : () => Promise.resolve(undefined));
  /** @type {Promise<boolean>} */
  const interrupted = kept.find(uploadKey(ctx.config.publishableKey, ctx.config.templateId)).then(
    (saved) => {
      if (!saved) return false;
      note.textContent = t("resume.note", { file: saved.fileName });
      note.hidden = false;
      return true;
    },
    () => false, // no storage at all (nor the host page's): nothing to resume
  );
  input.addEventListener("change", async () => {
    const file = input.files && input.files[0];
    if (file) {
      if (await interrupted) resumeFile(ctx, file);
      else openFile(ctx, file);
    }
  });
  const fields = fieldsFor(ctx.config).map((f) =>
    el("li", { text: f.required ? t("start.required", { label: f.label }) : f.label }),
  );
  render(
    ctx,
    el("h2", { id: "screen-heading", tabindex: "-1", text: t("start.heading") }),
    el("p", { text: t("start.intro") }),
    el("p", { id: "retention", class: "muted", text: retentionText(ctx.config.retention) }),
    note,
    inputLabel,
    input,
    status,
    el("h2", { text: t("start.expected") }),
    el("ul", {}, ...fields),
  );
}

/**
 * What the user is told about how long their rows are kept (the server decides it).
 * @param {import("../types.js").Retention} retention
 */
export function retentionText({ days, passthrough, organisation }) {
  if (passthrough) return t("start.passthrough", { organisation });
  return plural("start.kept", days);
}

/**
 * The way back to a fresh start.
 * @param {Context} ctx
 * @returns {import("./shell.js").Action}
 */
export function restart(ctx) {
  return { id: "restart", text: t("error.restart"), onclick: () => showStart(ctx) };
}

/**
 * The finish screen's way on: another file, from the first step.
 * @param {Context} ctx
 * @returns {import("./shell.js").Action}
 */
export function anotherFile(ctx) {
  return { id: "import-another", text: t("nav.another"), onclick: () => showStart(ctx) };
}

/**
 * Read the file in the worker (again, with new options: sheet, encoding, header row).
 * `headerConfirmed`: the user chose the header row, so its labels may be sent to recall
 * the mappings others confirmed; otherwise nothing of the file leaves the browser.
 * @param {Context} ctx
 * @param {File} file
 * @param {import("../types.js").OpenOptions} [options]
 * @param {{headerConfirmed?: boolean}} [choice]
 */
export async function openFile(ctx, file, options = {}, { headerConfirmed = false } = {}) {
  const { config } = ctx;
  if (file.size > config.maxFileBytes) {
    // Refused before a byte is read; the worker gives the engine the same limit.
    const params = { file: file.name, size: formatSize(file.size), limit: formatSize(config.maxFileBytes) };
    showError(ctx, t("file.tooLarge", params), [restart(ctx)]);
    return;
  }
  render(ctx, ...busy(t("progress.reading", { file: file.name })));
  try {
    const context = { publishableKey: config.publishableKey, templateId: config.templateId };
    const payload = { file, template: config.template, context, options, maxBytes: config.maxFileBytes, headerConfirmed };
    /** @type {import("../types.js").Described} */
    const described = await ctx.engine.ask("open", payload, showProgress);
    showMapping(ctx, file, { ...described, options, headerConfirmed });
  } catch (error) {
    showError(ctx, /** @type {Error} */ (error).message, [restart(ctx)]);
  }
}

/**
 * Carry on the interrupted upload if `file` is the file it was sending (the worker compares
 * fingerprints and re-applies the mapping and edits); otherwise open it as a new file.
 * @param {Context} ctx
 * @param {File} file
 */
async function resumeFile(ctx, file) {
  const { config } = ctx;
  render(ctx, ...busy(t("progress.reading", { file: file.name })));
  try {
    const context = { publishableKey: config.publishableKey, templateId: config.templateId };
    const payload = { file, template: config.template, context, maxBytes: config.maxFileBytes };
    const resumed = await ctx.engine.ask("resume", payload, showProgress);
    if (!resumed) {
      openFile(ctx, file);
      return;
    }
    const { described, summary, options, headerConfirmed, confirmed } = resumed;
    submit(ctx, file, { ...described, options, headerConfirmed, confirmed }, summary, { resumable: true });
  } catch (error) {
    showError(ctx, /** @type {Error} */ (error).message, [restart(ctx)]);
  }
}
