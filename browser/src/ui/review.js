// Review and fix: the summary, one-step fixes per column (list values, ambiguous dates),
// filters, find and replace, row deletion, undo, and the grid.
import { fieldsFor, labelOf } from "../fields.js";
import { formatNumber, plural, t } from "../i18n/index.js";
import { createGrid } from "./grid.js";
import { showMapping } from "./mapping.js";
import { el, render } from "./shell.js";
import { hostPageCapMessage, submit } from "./submit.js";

/** @typedef {import("./shell.js").Context} Context */
/** @typedef {import("../types.js").OpenedFile} OpenedFile */
/** @typedef {import("../types.js").Summary} Summary */
/** @typedef {import("../types.js").Questions} Questions */
/** @typedef {import("../types.js").ValueProblems} ValueProblems */
/** @typedef {import("../types.js").DateQuestion} DateQuestion */
/** @typedef {import("../i18n/index.js").MessageKey} MessageKey */

/** Deleting this many rows or more is confirmed first. */
export const CONFIRM_ROWS = 10;

const CODES = new Set(["type-error", "required", "enum", "pattern", "minimum", "maximum", "minLength", "maxLength", "unique", "primary-key"]);

/**
 * A problem code as the user reads it (never the code itself).
 * @param {string} code
 */
export function codeLabel(code) {
  return t(/** @type {MessageKey} */ (CODES.has(code) ? `code.${code}` : "code.other"));
}

/**
 * An ISO date (YYYY-MM-DD) as the user's locale writes it, month spelled out.
 * @param {string} iso
 */
function longDate(iso) {
  const [year, month, day] = iso.split("-").map(Number);
  const lang = document.documentElement.lang || "en";
  return new Intl.DateTimeFormat(lang, { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" }).format(
    Date.UTC(year, month - 1, day),
  );
}

/**
 * @param {Context} ctx
 * @param {File} file
 * @param {OpenedFile} described
 * @param {Summary} initial
 */
export function showReview(ctx, file, described, initial) {
  const fields = fieldsFor(ctx.config, described);
  const shown = fields.filter((f) => initial.fields.includes(f.name));
  let summary = initial;

  const summaryEl = el("p", { id: "summary" });
  // Which invalid-row policy applies, said before submitting (the engine knows it).
  const policyEl = el("p", { id: "policy-note", class: "muted" });
  const submitButton = el("button", { id: "submit", onclick: () => submit(ctx, file, described, summary) });
  // The host page takes at most so many rows: said here, before the user submits.
  const capEl = el("p", { id: "host-page-cap", class: "error", role: "status", hidden: "" });
  const detail = el("p", { id: "cell-detail" });
  const hint = el("p", { id: "review-hint", class: "muted", text: t("review.hintKeys") });
  const help = el("p", { id: "field-help", class: "muted" });
  // Said to screen readers: what a change did, and the focused cell's problem. Only these
  // status changes, never a redraw.
  const status = el("p", { id: "review-status", role: "status", "aria-live": "polite" });
  const announce = el("p", { id: "grid-announce", class: "visually-hidden", "aria-live": "polite" });
  const fixSteps = el("div", { id: "fix-steps" });
  const panel = el("div", { id: "fix-panel" });

  /**
   * Run a change; say what it did.
   * @param {Promise<Summary>} promise
   * @param {(summary: Summary) => string} [said]
   */
  async function apply(promise, said) {
    try {
      summary = await promise;
      grid.selected.clear();
      showSummary();
      status.textContent = said ? said(summary) : "";
      await grid.draw();
      await showQuestions();
    } catch (error) {
      status.textContent = /** @type {Error} */ (error).message;
    }
  }
  const changed = (/** @type {Summary} */ s) => plural("review.changed", s.changed ?? 0);
  /** @param {string} name @param {unknown[]} [args] @param {(summary: Summary) => string} [said] */
  const change = (name, args = [], said = changed) =>
    apply(ctx.engine.call(name, args), name === "edit" ? undefined : said);
  /** @param {string} name @param {unknown[]} [args] */
  const ask = (name, args = []) => ctx.engine.call(name, args);
  const grid = createGrid(shown, {
    fetchRows: (start, count) => ctx.engine.call("window", [start, count]),
    change,
    ask,
    detail,
    help,
    announce,
  });

  const undoButton = el("button", {
    id: "undo",
    class: "secondary",
    text: t("review.undo"),
    onclick: () => change("undo", [], () => t("review.undone")),
  });
  const viewSelect = el(
    "select",
    { id: "view-filter", "aria-label": t("review.viewLabel") },
    el("option", { value: "all", text: t("review.viewAll") }),
    el("option", { value: "errors", text: t("review.viewErrors") }),
  );
  const fieldSelect = el("select", { id: "filter-field", "aria-label": t("review.fieldLabel") });
  const codeSelect = el("select", { id: "filter-code", "aria-label": t("review.codeLabel") });
  const replaceField = el("select", { id: "replace-field", "aria-label": t("review.replaceField") });
  for (const f of shown) replaceField.append(el("option", { value: f.name, text: f.label }));
  const findInput = el("input", { id: "find", placeholder: t("review.find"), "aria-label": t("review.find") });
  const replaceInput = el("input", {
    id: "replace-with",
    placeholder: t("review.replaceWith"),
    "aria-label": t("review.replaceWith"),
  });
  const replaceCount = el("span", { id: "replace-count", class: "muted" });

  // How many cells a replace will change, said as the user types.
  let countToken = 0;
  async function countReplace() {
    const token = ++countToken;
    if (!findInput.value) {
      replaceCount.textContent = "";
      return;
    }
    const count = Number(await ask("count_replace", [replaceField.value, findInput.value]));
    if (token === countToken) replaceCount.textContent = plural("review.willChange", count);
  }
  findInput.addEventListener("input", countReplace);
  replaceField.addEventListener("change", countReplace);

  function fillFilters() {
    const keepField = fieldSelect.value;
    const keepCode = codeSelect.value;
    fieldSelect.replaceChildren(el("option", { value: "", text: t("review.anyField") }));
    for (const [name, count] of Object.entries(summary.by_field)) {
      const text = t("review.counted.n", { name: labelOf(fields, name), count: formatNumber(count) });
      fieldSelect.append(el("option", { value: name, text }));
    }
    codeSelect.replaceChildren(el("option", { value: "", text: t("review.anyCode") }));
    for (const [code, count] of Object.entries(summary.by_code)) {
      codeSelect.append(el("option", { value: code, text: t("review.counted.n", { name: codeLabel(code), count: formatNumber(count) }) }));
    }
    fieldSelect.value = summary.by_field[keepField] ? keepField : "";
    codeSelect.value = summary.by_code[keepCode] ? keepCode : "";
  }

  function showSummary() {
    const errors = summary.error_count;
    summaryEl.textContent =
      errors > 0
        ? plural("review.summaryErrors", errors, {
            rows: summary.rows_with_errors,
            total: plural("review.rowsOf", summary.rows),
          })
        : plural("review.summaryValid", summary.rows);
    summaryEl.className = errors > 0 ? "error" : "ok";
    policyEl.textContent =
      summary.policy === "reject"
        ? t("policy.reject")
        : plural(`policy.${summary.policy}`, summary.rows_with_errors, { sent: summary.sent });
    policyEl.dataset.policy = summary.policy;
    const over = hostPageCapMessage(ctx.config, summary.sent);
    if (over !== null && capEl.hidden) ctx.host?.send("step", { step: "over-host-page-cap" });
    capEl.textContent = over ?? "";
    capEl.hidden = over === null;
    submitButton.disabled = !summary.submittable || over !== null;
    submitButton.textContent =
      summary.submittable || summary.rows === 0
        ? plural("review.submitRows", summary.sent)
        : plural("review.submitBlocked", errors);
    undoButton.disabled = !summary.can_undo;
    grid.resize(summary);
    fillFilters();
  }

  /** The one-step fixes the engine finds: list values to map, dates to read one way. */
  async function showQuestions() {
    /** @type {Questions} */
    const found = await ask("questions");
    fixSteps.replaceChildren();
    for (const problems of found.values) {
      const label = labelOf(fields, problems.field);
      fixSteps.append(
        el("button", {
          id: `map-values-${problems.field}`,
          class: "secondary",
          text: plural("values.open", problems.cells, { label }),
          onclick: () => showValueMap(problems),
        }),
      );
    }
    for (const question of found.dates) fixSteps.append(dateQuestion(question));
  }

  /** @param {DateQuestion} question */
  function dateQuestion(question) {
    const label = labelOf(fields, question.field);
    const convert = (/** @type {boolean} */ dayFirst) => change("convert_dates", [question.field, dayFirst]);
    const orderText = (/** @type {boolean} */ dayFirst) => t(dayFirst ? "dates.orderDay" : "dates.orderMonth");
    if (question.declared != null) {
      const order = orderText(question.declared);
      return el("button", {
        id: `dates-convert-${question.field}`,
        class: "secondary",
        text: plural("dates.declared", question.convertible, { label, order }),
        onclick: () => convert(/** @type {boolean} */ (question.declared)),
      });
    }
    const heading = el("p", {
      id: `dates-ask-${question.field}`,
      text: t("dates.ask", { label, example: question.examples[0]?.value ?? "" }),
    });
    const examples = el(
      "ul",
      { class: "examples" },
      ...question.examples.map((e) =>
        el("li", {
          text: t("dates.example", { value: e.value, dayFirst: longDate(e.day_first), monthFirst: longDate(e.month_first) }),
        }),
      ),
    );
    const hint = question.hint == null ? null : el("p", { class: "muted", text: t("dates.hint", { order: orderText(question.hint) }) });
    return el(
      "div",
      { class: "question", role: "group", "aria-labelledby": `dates-ask-${question.field}` },
      heading,
      examples,
      hint,
      el("button", { id: `dates-day-first-${question.field}`, class: "secondary", text: t("dates.dayFirst"), onclick: () => convert(true) }),
      el("button", { id: `dates-month-first-${question.field}`, class: "secondary", text: t("dates.monthFirst"), onclick: () => convert(false) }),
    );
  }

  /**
   * The distinct values outside a list field's list, each with a select of allowed values
   * (the suggestion chosen) and its confidence; applied to every cell at once.
   * @param {ValueProblems} problems
   */
  function showValueMap(problems) {
    const label = labelOf(fields, problems.field);
    /** @type {[string, HTMLSelectElement][]} */
    const choices = [];
    const rows = problems.values.map((v, i) => {
      const select = el("select", { id: `value-map-${i}`, "aria-label": t("values.mapFor", { value: v.value }) });
      select.append(el("option", { value: "", text: t("values.keep") }));
      for (const allowed of problems.allowed) select.append(el("option", { value: allowed, text: allowed }));
      const s = v.suggestion;
      select.value = s ? s.value : "";
      choices.push([v.value, select]);
      const why = s
        ? t(/** @type {MessageKey} */ (`values.source.${s.source}`), {
            percent: new Intl.NumberFormat(document.documentElement.lang || "en", { style: "percent" }).format(s.confidence),
          })
        : t("values.none");
      return el(
        "tr",
        { "data-value": v.value },
        el("td", { text: v.value }),
        el("td", { class: "num", text: formatNumber(v.count) }),
        el("td", {}, select),
        el("td", { class: "muted", text: why }),
      );
    });
    const close = () => {
      panel.replaceChildren();
      document.getElementById(`map-values-${problems.field}`)?.focus();
    };
    const title = el("h2", { id: "value-map-title", tabindex: "-1", text: t("values.title", { label }) });
    panel.replaceChildren(
      el(
        "section",
        { id: "value-map", "aria-labelledby": "value-map-title" },
        title,
        el("p", { class: "muted", text: t("values.intro") }),
        el("p", { class: "muted", text: t("review.allowed", { values: problems.allowed.join(", ") }) }),
        el(
          "table",
          { class: "value-map" },
          el(
            "thead",
            {},
            el(
              "tr",
              {},
              el("th", { scope: "col", text: t("values.value") }),
              el("th", { scope: "col", text: t("values.count") }),
              el("th", { scope: "col", text: t("values.mapTo") }),
              el("th", { scope: "col", text: t("values.why") }),
            ),
          ),
          el("tbody", {}, ...rows),
        ),
        problems.more ? el("p", { class: "muted", text: plural("values.more", problems.more) }) : null,
        el("button", {
          id: "value-map-apply",
          text: t("values.apply"),
          onclick: async () => {
            /** @type {Record<string, string>} */
            const mapping = {};
            for (const [value, select] of choices) if (select.value) mapping[value] = select.value;
            panel.replaceChildren();
            await change("map_values", [problems.field, JSON.stringify(mapping)]);
            summaryEl.focus();
          },
        }),
        el("button", { id: "value-map-cancel", class: "secondary", text: t("values.cancel"), onclick: close }),
      ),
    );
    title.focus();
  }

  /**
   * Delete rows, asking first when they are many.
   * @param {number} count
   * @param {() => void} run
   */
  function confirmDelete(count, run) {
    if (count === 0) {
      status.textContent = t("review.noneSelected");
      return;
    }
    if (count < CONFIRM_ROWS) {
      run();
      return;
    }
    const dialog = el("dialog", { id: "confirm-delete", "aria-labelledby": "confirm-delete-text" });
    const no = el("button", { id: "confirm-no", class: "secondary", text: t("review.confirmNo"), onclick: () => dialog.close() });
    dialog.append(
      el("p", { id: "confirm-delete-text", text: plural("review.confirmDelete", count) }),
      el("button", {
        id: "confirm-yes",
        text: t("review.confirmYes"),
        onclick: () => {
          dialog.close();
          run();
        },
      }),
      no,
    );
    dialog.addEventListener("close", () => dialog.remove());
    document.body.append(dialog);
    dialog.showModal();
    no.focus();
  }
  const deleted = (/** @type {number} */ before) => (/** @type {Summary} */ s) => plural("review.deleted", before - s.rows);

  async function applyView() {
    const view = {
      errors_only: viewSelect.value === "errors",
      field: fieldSelect.value || null,
      code: codeSelect.value || null,
    };
    await change("set_view", [JSON.stringify(view)], () => "");
    grid.toTop();
  }
  viewSelect.addEventListener("change", applyView);
  fieldSelect.addEventListener("change", applyView);
  codeSelect.addEventListener("change", applyView);

  /** Focus the next (step 1) or previous (-1) cell with a problem. */
  async function toError(/** @type {number} */ step) {
    /** @type {{position: number, field: string | null} | null} */
    const found = await ask("error_at", [grid.focused.position, step]);
    if (!found) {
      status.textContent = t("review.noErrors");
      return;
    }
    await grid.moveTo(found.position, grid.columnOf(found.field));
  }

  const button = (/** @type {string} */ id, /** @type {string} */ text, /** @type {() => void} */ onclick) =>
    el("button", { id, class: "secondary", type: "button", text, onclick });
  const replaceForm = el(
    "form",
    { class: "toolbar", id: "replace-form" },
    replaceField,
    findInput,
    replaceInput,
    el("button", { id: "replace-apply", class: "secondary", type: "submit", text: t("review.replaceApply") }),
    replaceCount,
  );
  // Enter in either box replaces, as the button does.
  replaceForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    await change("replace", [replaceField.value, findInput.value, replaceInput.value]);
    countReplace();
  });
  render(
    ctx,
    summaryEl,
    policyEl,
    capEl,
    fixSteps,
    panel,
    el(
      "div",
      { class: "toolbar" },
      viewSelect,
      fieldSelect,
      codeSelect,
      undoButton,
      button("delete-selected", t("review.deleteSelected"), () => {
        const rows = [...grid.selected];
        confirmDelete(rows.length, () => change("delete_rows", [JSON.stringify(rows)], deleted(summary.rows)));
      }),
      button("delete-error-rows", t("review.deleteErrorRows"), () =>
        confirmDelete(summary.rows_with_errors, () => change("delete_rows_with_errors", [], deleted(summary.rows))),
      ),
    ),
    replaceForm,
    el(
      "div",
      { class: "toolbar" },
      button("previous-error", t("review.previousError"), () => toError(-1)),
      button("next-error", t("review.nextError"), () => toError(1)),
    ),
    hint,
    grid.element,
    el("div", { class: "message-line" }, detail, help, status),
    announce,
    el("div", { class: "toolbar" }, submitButton, button("back", t("review.back"), () => showMapping(ctx, file, described))),
  );
  summaryEl.setAttribute("tabindex", "-1");
  grid.element.setAttribute("aria-describedby", "review-hint");
  showSummary();
  grid.draw();
  showQuestions();
}
