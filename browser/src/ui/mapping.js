// Matching the file's columns to the template's fields, and the file's reading choices.
import { fieldsFor, unmappedRequired } from "../fields.js";
import { t } from "../i18n/index.js";
import { showReview } from "./review.js";
import { busy, el, render, showError, showProgress } from "./shell.js";
import { openFile } from "./start.js";

/** @typedef {import("./shell.js").Context} Context */
/** @typedef {import("../types.js").OpenedFile} OpenedFile */
/** @typedef {import("../i18n/index.js").MessageKey} MessageKey */

/** @type {[string, MessageKey][]} */
const ENCODINGS = [
  ["", "encoding.auto"],
  ["utf-8", "encoding.utf-8"],
  ["utf-16", "encoding.utf-16"],
  ["windows-1252", "encoding.windows-1252"],
  ["iso-8859-1", "encoding.iso-8859-1"],
  ["shift_jis", "encoding.shift_jis"],
];

/**
 * How the engine came to propose a column.
 * @param {import("../types.js").Match | undefined} match
 */
export function matchText(match) {
  if (!match) return "";
  if (match.source === "fuzzy") return t("match.fuzzy", { percent: Math.round((match.confidence ?? 0) * 100) });
  if (match.source === "remembered") return t("match.remembered");
  return t("match.exact");
}

/**
 * The mapping to remember on submit, as {field: header label}: only once the user confirmed
 * the header row (for a file without one, the "labels" are the first row's cells).
 * @param {OpenedFile} described
 * @param {Record<string, number>} mapping field -> column index
 * @returns {Record<string, string> | undefined}
 */
export function confirmedMapping(described, mapping) {
  if (!described.headerConfirmed) return undefined;
  /** @type {Record<string, string>} */
  const confirmed = {};
  for (const [name, index] of Object.entries(mapping)) confirmed[name] = described.headers[index];
  return confirmed;
}

/**
 * Whether the user may pick the file's encoding: the engine says so; older engines
 * answered only for delimited text ("csv").
 * @param {OpenedFile} described
 */
function encodingChoosable(described) {
  return described.encoding_choosable === true;
}

/**
 * @param {Context} ctx
 * @param {File} file
 * @param {OpenedFile} described
 */
export function showMapping(ctx, file, described) {
  const fields = fieldsFor(ctx.config, described);
  /** @type {Record<string, HTMLSelectElement>} */
  const selects = {};
  const rows = fields.map((field) => {
    const select = el("select", { "data-field": field.name, id: `map-${field.name}` });
    select.append(el("option", { value: "", text: t("mapping.unmapped") }));
    described.headers.forEach((header, index) => {
      const option = el("option", { value: String(index), text: header });
      if (described.mapping[field.name] === index) option.selected = true;
      select.append(option);
    });
    selects[field.name] = select;
    const match = (described.matches || []).find((m) => m.field === field.name);
    const label = field.required ? t("mapping.requiredMark", { label: field.label }) : field.label;
    return el(
      "tr",
      {},
      el("td", { text: label }),
      el("td", {}, select),
      el("td", { class: "muted match-source", id: `match-${field.name}`, text: matchText(match) }),
    );
  });
  const preview = el(
    "table",
    { class: "preview" },
    el("thead", {}, el("tr", {}, ...described.headers.map((h) => el("th", { text: h })))),
    el(
      "tbody",
      {},
      ...described.preview.map((row) =>
        el("tr", {}, ...row.map((cell) => el("td", { text: cell == null ? "" : String(cell) }))),
      ),
    ),
  );
  const notice = el("p", { id: "mapping-error", class: "error", role: "alert" });
  const proceed = async () => {
    /** @type {Record<string, number>} */
    const mapping = {};
    for (const [name, select] of Object.entries(selects)) {
      if (select.value !== "") mapping[name] = Number(select.value);
    }
    const missing = unmappedRequired(fields, mapping);
    if (missing.length) {
      notice.textContent = t("mapping.missing", { fields: missing.map((f) => f.label).join(", ") });
      return;
    }
    render(ctx, ...busy(t("progress.checking", { rows: described.rows })));
    try {
      const summary = await ctx.engine.call("set_mapping", [JSON.stringify(mapping)], showProgress);
      showReview(ctx, file, { ...described, confirmed: confirmedMapping(described, mapping) }, summary);
    } catch (error) {
      const back = { id: "restart", text: t("review.back"), onclick: () => showMapping(ctx, file, described) };
      showError(ctx, /** @type {Error} */ (error).message, [back]);
    }
  };
  render(
    ctx,
    el("p", { text: t("mapping.intro", { file: described.file, rows: described.rows }) }),
    fileChoices(ctx, file, described),
    headerRowStep(ctx, file, described),
    problemList(described),
    el("table", { class: "mapping" }, el("tbody", {}, ...rows)),
    notice,
    el("button", { id: "map-continue", onclick: proceed, text: t("mapping.continue") }),
    el("h2", { text: t("mapping.yourFile") }),
    preview,
  );
}

/**
 * Sheet, header row and encoding. A new sheet or encoding re-detects the header row; a new
 * header row keeps the rest.
 * @param {Context} ctx
 * @param {File} file
 * @param {OpenedFile} described
 */
function fileChoices(ctx, file, described) {
  const reopen = (/** @type {import("../types.js").OpenOptions} */ change) =>
    openFile(ctx, file, { ...described.options, ...change });
  const choices = el("div", { class: "toolbar", id: "file-choices" });
  if (described.sheets.length > 1) {
    const sheet = el("select", { id: "sheet-select", "aria-label": t("mapping.sheet") });
    for (const name of described.sheets) sheet.append(el("option", { value: name, text: name }));
    sheet.value = described.sheet ?? "";
    sheet.addEventListener("change", () => reopen({ sheet: sheet.value, header_row: "" }));
    choices.append(el("label", { text: `${t("mapping.sheet")} ` }), sheet);
  }
  const headerRow = el("input", {
    id: "header-row",
    type: "number",
    min: "1",
    value: String(described.header_row),
    "aria-label": t("mapping.headerRow"),
  });
  choices.append(
    el("label", { text: `${t("mapping.headerRow")} ` }),
    headerRow,
    el("button", {
      id: "header-row-apply",
      class: "secondary",
      text: t("mapping.useRow"),
      // Choosing the header row is confirming it.
      onclick: () => openFile(ctx, file, { ...described.options, header_row: headerRow.value }, { headerConfirmed: true }),
    }),
  );
  if (encodingChoosable(described)) {
    const encoding = el("select", { id: "encoding", "aria-label": t("mapping.encoding") });
    for (const [value, key] of ENCODINGS) encoding.append(el("option", { value, text: t(key) }));
    encoding.value = described.options.encoding || "";
    encoding.addEventListener("change", () => reopen({ encoding: encoding.value, header_row: "" }));
    choices.append(
      el("label", { text: `${t("mapping.encodingReadAs", { encoding: described.encoding ?? "" })} ` }),
      encoding,
    );
  }
  return choices;
}

/**
 * Asks the user to confirm the header row the engine proposed; only then are its labels sent
 * (to recall what other users confirmed for them) and remembered on submit.
 * @param {Context} ctx
 * @param {File} file
 * @param {OpenedFile} described
 */
function headerRowStep(ctx, file, described) {
  const row = described.header_row;
  if (described.headerConfirmed) {
    return el("p", {
      id: "header-row-status",
      role: "status",
      tabindex: "-1",
      class: "muted",
      text: t("mapping.headerRowConfirmed", { row }),
    });
  }
  const confirm = el("button", { id: "header-row-confirm", text: t("mapping.headerRowRight") });
  confirm.addEventListener("click", async () => {
    confirm.disabled = true;
    const context = { publishableKey: ctx.config.publishableKey, templateId: ctx.config.templateId };
    try {
      /** @type {import("../types.js").Described} */
      const proposed = await ctx.engine.ask("recall", { context });
      showMapping(ctx, file, { ...proposed, options: described.options, headerConfirmed: true });
      document.getElementById("header-row-status")?.focus();
    } catch (error) {
      const back = { id: "restart", text: t("review.back"), onclick: () => showMapping(ctx, file, described) };
      showError(ctx, /** @type {Error} */ (error).message, [back]);
    }
  });
  const question = el("p", { id: "header-row-question", text: t("mapping.headerRowAsk", { row }) });
  confirm.setAttribute("aria-describedby", "header-row-question");
  return el("div", { id: "header-row-step", class: "toolbar" }, question, confirm);
}

/** @param {OpenedFile} described */
function problemList(described) {
  const problems = described.problems.map((p) => el("li", { text: p.message }));
  if (described.problem_count > problems.length) {
    problems.push(el("li", { text: t("mapping.moreProblems", { count: described.problem_count - problems.length }) }));
  }
  return problems.length ? el("ul", { id: "file-problems", class: "warnings" }, ...problems) : null;
}
