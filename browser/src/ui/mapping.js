// Matching the file's columns to the template's fields, and the file's reading choices.
import { fieldsFor, unmappedRequired } from "../fields.js";
import { formatNumber, plural, t } from "../i18n/index.js";
import { showReview } from "./review.js";
import { busy, el, render, showError, showProgress, step } from "./shell.js";
import { openFile, showStart } from "./start.js";

/** @typedef {import("./shell.js").Context} Context */
/** @typedef {import("../types.js").OpenedFile} OpenedFile */
/** @typedef {import("../types.js").FieldInfo} FieldInfo */

/**
 * The encodings a user may pick: the WHATWG Encoding Standard's, by its names (the engine
 * reads each; tests/pipeline/test_encodings_choice.py checks it). "replacement" and
 * "x-user-defined" are left out: no file is written in them.
 */
export const ENCODINGS = [
  "UTF-8",
  "UTF-16LE",
  "UTF-16BE",
  "windows-1252",
  "ISO-8859-1",
  "ISO-8859-2",
  "ISO-8859-3",
  "ISO-8859-4",
  "ISO-8859-5",
  "ISO-8859-6",
  "ISO-8859-7",
  "ISO-8859-8",
  "ISO-8859-8-I",
  "ISO-8859-10",
  "ISO-8859-13",
  "ISO-8859-14",
  "ISO-8859-15",
  "ISO-8859-16",
  "windows-874",
  "windows-1250",
  "windows-1251",
  "windows-1253",
  "windows-1254",
  "windows-1255",
  "windows-1256",
  "windows-1257",
  "windows-1258",
  "IBM866",
  "KOI8-R",
  "KOI8-U",
  "macintosh",
  "x-mac-cyrillic",
  "Shift_JIS",
  "EUC-JP",
  "ISO-2022-JP",
  "GBK",
  "gb18030",
  "Big5",
  "EUC-KR",
];

const SAMPLES = 3; // values shown beside a column

/**
 * How the engine came to propose a column.
 * @param {import("../types.js").Match | undefined} match
 */
export function matchText(match) {
  if (!match) return "";
  if (match.source === "fuzzy") return t("match.fuzzy", { percent: formatNumber(match.confidence ?? 0, { style: "percent" }) });
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
 * Up to three different non-empty values of a column, from the engine's preview rows.
 * @param {OpenedFile} described
 * @param {number} column
 * @returns {string[]}
 */
export function samplesOf(described, column) {
  /** @type {string[]} */
  const seen = [];
  for (const row of described.preview) {
    const cell = row[column];
    if (cell == null || cell === "") continue;
    const text = String(cell);
    if (!seen.includes(text)) seen.push(text);
    if (seen.length === SAMPLES) break;
  }
  return seen;
}

/** @param {string[]} samples */
function sampleText(samples) {
  return samples.length ? samples.map((s) => `“${s}”`).join(", ") : t("mapping.noSamples");
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
  const unmappedList = el("ul", { id: "not-imported" });
  const refresh = () => {
    const used = new Set(Object.values(selects).map((s) => s.value).filter((v) => v !== ""));
    for (const [name, select] of Object.entries(selects)) {
      const samples = document.getElementById(`samples-${name}`);
      if (samples) samples.textContent = select.value === "" ? "" : sampleText(samplesOf(described, Number(select.value)));
    }
    unmappedList.replaceChildren(
      ...described.headers.flatMap((header, index) =>
        used.has(String(index))
          ? []
          : [
              el(
                "li",
                { "data-column": String(index) },
                el("strong", { text: t("mapping.notImported", { column: header }) }),
                " ",
                el("span", { class: "muted", text: sampleText(samplesOf(described, index)) }),
              ),
            ],
      ),
    );
  };
  const rows = fields.map((field) => fieldRow(described, field, selects, refresh));
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
    render(ctx, ...busy(plural("progress.checking", described.rows)));
    try {
      // The engine keeps the edits of every field still mapped to the same column.
      const summary = await ctx.engine.call("set_mapping", [JSON.stringify(mapping)], showProgress);
      step(ctx, "review");
      showReview(ctx, file, { ...described, reviewed: true, confirmed: confirmedMapping(described, mapping) }, summary);
    } catch (error) {
      const back = { id: "restart", text: t("review.back"), onclick: () => showMapping(ctx, file, described) };
      showError(ctx, /** @type {Error} */ (error).message, [back]);
    }
  };
  step(ctx, "mapping");
  render(
    ctx,
    el("h2", { id: "screen-heading", tabindex: "-1", text: t("mapping.heading") }),
    el("p", { id: "mapping-intro", text: plural("mapping.intro", described.rows, { file: described.file }) }),
    fileChoices(ctx, file, described),
    headerRowStep(ctx, file, described),
    problemList(described),
    el(
      "table",
      { class: "mapping" },
      el(
        "thead",
        {},
        el(
          "tr",
          {},
          el("th", { scope: "col", text: t("mapping.fieldColumn") }),
          el("th", { scope: "col", text: t("mapping.fileColumn") }),
          el("th", { scope: "col", text: t("mapping.samples") }),
          el("th", { scope: "col", text: t("mapping.how") }),
        ),
      ),
      el("tbody", {}, ...rows),
    ),
    el("h3", { text: t("mapping.notImportedHeading") }),
    unmappedList,
    notice,
    el(
      "div",
      { class: "toolbar" },
      el("button", { id: "mapping-back", class: "secondary", text: t("nav.back"), onclick: () => leave(ctx, described, () => showStart(ctx)) }),
      el("button", { id: "map-continue", onclick: proceed, text: t("mapping.continue") }),
    ),
    el("h2", { text: t("mapping.yourFile") }),
    previewTable(ctx, file, described),
  );
  refresh();
}

/**
 * One template field: its label, description and allowed values, the column it takes, that
 * column's sample values, and how the engine matched it (or what it only proposes).
 * @param {OpenedFile} described
 * @param {FieldInfo} field
 * @param {Record<string, HTMLSelectElement>} selects
 * @param {() => void} refresh
 */
function fieldRow(described, field, selects, refresh) {
  const id = `map-${field.name}`;
  const select = el("select", { "data-field": field.name, id });
  select.append(el("option", { value: "", text: t("mapping.unmapped") }));
  described.headers.forEach((header, index) => {
    const option = el("option", { value: String(index), text: header });
    if (described.mapping[field.name] === index) option.selected = true;
    select.append(option);
  });
  select.addEventListener("change", refresh);
  selects[field.name] = select;
  const match = (described.matches || []).find((m) => m.field === field.name);
  const how = el("td", { class: "muted match-source", id: `match-${field.name}` });
  if (match && match.proposed && described.mapping[field.name] === undefined) {
    // Unsure: offered, never chosen for the user.
    const column = match.column ?? 0;
    const header = described.headers[column];
    how.append(
      t("mapping.proposed", { column: header, percent: formatNumber(match.confidence ?? 0, { style: "percent" }) }),
      " ",
      el("button", {
        id: `accept-${field.name}`,
        class: "secondary",
        text: t("mapping.useProposed"),
        "aria-label": t("mapping.useProposedFor", { column: header, label: field.label }),
        onclick: () => {
          select.value = String(column);
          refresh();
          select.focus();
        },
      }),
    );
  } else {
    how.textContent = matchText(match);
  }
  const label = field.required ? t("mapping.requiredMark", { label: field.label }) : field.label;
  const about = [];
  if (field.description) about.push(el("div", { class: "muted field-description", text: field.description }));
  if (field.allowed && field.allowed.length) {
    about.push(el("div", { class: "muted field-allowed", text: t("mapping.allowed", { values: field.allowed.join(", ") }) }));
  }
  return el(
    "tr",
    {},
    el("th", { scope: "row" }, el("label", { for: id, text: label }), ...about),
    el("td", {}, select),
    el("td", { class: "samples", id: `samples-${field.name}` }),
    how,
  );
}

/**
 * Leave the mapping for an earlier step: the review's edits (if the user has been there)
 * do not fit another reading of the file, so the user is asked first.
 * @param {Context} ctx
 * @param {OpenedFile} described
 * @param {() => void} go
 */
function leave(ctx, described, go) {
  if (!described.reviewed) {
    go();
    return;
  }
  const dialog = el(
    "dialog",
    { id: "discard-dialog", "aria-labelledby": "discard-text" },
    el("p", { id: "discard-text", text: t("nav.discardEdits") }),
    el("button", {
      id: "discard-yes",
      text: t("nav.discardYes"),
      onclick: () => {
        dialog.close();
        go();
      },
    }),
    el("button", { id: "discard-no", class: "secondary", text: t("nav.discardNo"), onclick: () => dialog.close() }),
  );
  ctx.root.append(dialog);
  dialog.showModal();
}

/**
 * The file's first rows with their row numbers: the user clicks the row that holds the
 * column names (or says the file has none).
 * @param {Context} ctx
 * @param {File} file
 * @param {OpenedFile} described
 */
function previewTable(ctx, file, described) {
  const choosable = described.header_row_choosable !== false && described.header_row > 0;
  const useRow = (/** @type {number} */ row) =>
    leave(ctx, described, () => openFile(ctx, file, { ...described.options, header_row: String(row) }, { headerConfirmed: true }));
  /** @param {number} row */
  const rowHead = (row) =>
    el(
      "th",
      { scope: "row", class: "row-number" },
      choosable && row !== described.header_row
        ? el("button", {
            class: "link pick-header",
            "data-row": String(row),
            text: formatNumber(row),
            "aria-label": t("mapping.pickHeaderRow", { row: formatNumber(row) }),
            onclick: () => useRow(row),
          })
        : formatNumber(row),
    );
  const headRow = described.header_row > 0 ? rowHead(described.header_row) : el("th", { scope: "col", text: t("mapping.rowNumber") });
  const width = described.headers.length;
  /** @param {unknown[]} row */
  const cells = (row) => Array.from({ length: Math.max(width, row.length) }, (_, j) => el("td", { text: row[j] == null ? "" : String(row[j]) }));
  // The rows above the header row (a title, a blank line), as the engine read them: the
  // user may click one of them as the header row as well as any row below.
  const above = choosable ? (described.above ?? []) : [];
  return el(
    "table",
    { class: "preview", id: "file-preview" },
    el("caption", { class: "muted", text: choosable ? t("mapping.previewCaption") : t("mapping.yourFile") }),
    el(
      "thead",
      {},
      ...above.map((row, i) => el("tr", { class: "above-header muted", "data-row": String(i + 1) }, rowHead(i + 1), ...cells(row))),
      el("tr", { class: "header-row" }, headRow, ...described.headers.map((h) => el("th", { scope: "col", text: h }))),
    ),
    el(
      "tbody",
      {},
      ...described.preview.map((row, i) =>
        el("tr", {}, rowHead(described.first_data_row + i), ...row.map((cell) => el("td", { text: cell == null ? "" : String(cell) }))),
      ),
    ),
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
  const reopen = (/** @type {import("../types.js").OpenOptions} */ change, confirmed = false) =>
    leave(ctx, described, () => openFile(ctx, file, { ...described.options, ...change }, { headerConfirmed: confirmed }));
  const choices = el("div", { class: "toolbar", id: "file-choices" });
  if (described.sheets.length > 1) {
    const sheet = el("select", { id: "sheet-select" });
    for (const name of described.sheets) sheet.append(el("option", { value: name, text: name }));
    sheet.value = described.sheet ?? "";
    sheet.addEventListener("change", () => reopen({ sheet: sheet.value, header_row: "" }));
    choices.append(el("label", { for: "sheet-select", text: t("mapping.sheet") }), sheet);
  }
  if (described.header_row_choosable !== false) {
    if (described.header_row > 0) {
      const headerRow = el("input", { id: "header-row", type: "number", min: "1", value: String(described.header_row) });
      choices.append(
        el("label", { for: "header-row", text: t("mapping.headerRow") }),
        headerRow,
        el("button", {
          id: "header-row-apply",
          class: "secondary",
          text: t("mapping.useRow"),
          // Choosing the header row is confirming it.
          onclick: () => reopen({ header_row: headerRow.value }, true),
        }),
      );
    }
    const none = el("input", { id: "no-header-row", type: "checkbox" });
    none.checked = described.header_row === 0;
    // "No header row" is header_row 0 to the engine: its columns are named Column A, B, ...
    none.addEventListener("change", () => reopen({ header_row: none.checked ? "0" : "" }, none.checked));
    choices.append(el("span", { class: "check" }, none, el("label", { for: "no-header-row", text: t("mapping.noHeaderRow") })));
  }
  if (described.encoding_choosable === true) {
    const encoding = el("select", { id: "encoding" });
    encoding.append(el("option", { value: "", text: t("encoding.auto") }));
    for (const name of ENCODINGS) encoding.append(el("option", { value: name.toLowerCase(), text: name }));
    encoding.value = (described.options.encoding || "").toLowerCase();
    encoding.addEventListener("change", () => reopen({ encoding: encoding.value, header_row: "" }));
    choices.append(
      el("label", { for: "encoding", text: t("mapping.encodingReadAs", { encoding: described.encoding || t("encoding.unknown") }) }),
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
  if (described.header_row_choosable === false) return null;
  const row = formatNumber(described.header_row);
  if (described.headerConfirmed) {
    return el("p", {
      id: "header-row-status",
      role: "status",
      tabindex: "-1",
      class: "muted",
      text: described.header_row === 0 ? t("mapping.noHeaderRowConfirmed") : t("mapping.headerRowConfirmed", { row }),
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
    problems.push(el("li", { text: plural("mapping.moreProblems", described.problem_count - problems.length) }));
  }
  return problems.length ? el("ul", { id: "file-problems", class: "warnings" }, ...problems) : null;
}
