// Review and fix: the summary, filters, find and replace, row deletion, undo, and the grid.
import { fieldsFor, labelOf } from "../fields.js";
import { t } from "../i18n/index.js";
import { createGrid } from "./grid.js";
import { showMapping } from "./mapping.js";
import { el, render } from "./shell.js";
import { submit } from "./submit.js";

/** @typedef {import("./shell.js").Context} Context */
/** @typedef {import("../types.js").OpenedFile} OpenedFile */
/** @typedef {import("../types.js").Summary} Summary */
/** @typedef {import("../i18n/index.js").MessageKey} MessageKey */

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
  const detail = el("p", { id: "cell-detail", class: "muted", text: t("review.hint") });

  /** @param {Promise<Summary>} promise */
  async function apply(promise) {
    try {
      summary = await promise;
      grid.selected.clear();
      showSummary();
      await grid.draw();
    } catch (error) {
      detail.textContent = /** @type {Error} */ (error).message;
    }
  }
  /** @param {string} name @param {unknown[]} [args] */
  const change = (name, args = []) => apply(ctx.engine.call(name, args));
  const grid = createGrid(shown, { fetchRows: (start, count) => ctx.engine.call("window", [start, count]), change, detail });

  const undoButton = el("button", { id: "undo", class: "secondary", text: t("review.undo"), onclick: () => change("undo") });
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

  function fillFilters() {
    const keepField = fieldSelect.value;
    const keepCode = codeSelect.value;
    fieldSelect.replaceChildren(el("option", { value: "", text: t("review.anyField") }));
    for (const [name, count] of Object.entries(summary.by_field)) {
      fieldSelect.append(el("option", { value: name, text: t("review.counted", { name: labelOf(fields, name), count }) }));
    }
    codeSelect.replaceChildren(el("option", { value: "", text: t("review.anyCode") }));
    for (const [code, count] of Object.entries(summary.by_code)) {
      codeSelect.append(el("option", { value: code, text: t("review.counted", { name: code, count }) }));
    }
    fieldSelect.value = summary.by_field[keepField] ? keepField : "";
    codeSelect.value = summary.by_code[keepCode] ? keepCode : "";
  }

  function showSummary() {
    const errors = summary.error_count;
    summaryEl.textContent =
      errors > 0
        ? t("review.summaryErrors", { errors, rows: summary.rows_with_errors, total: summary.rows })
        : t("review.summaryValid", { rows: summary.rows });
    summaryEl.className = errors > 0 ? "error" : "ok";
    const policy = /** @type {MessageKey} */ (`policy.${summary.policy}`);
    policyEl.textContent = t(policy, { rows: summary.rows_with_errors, sent: summary.sent });
    policyEl.dataset.policy = summary.policy;
    submitButton.disabled = !summary.submittable;
    submitButton.textContent =
      summary.submittable || summary.rows === 0
        ? t("review.submit", { rows: summary.sent })
        : t("review.submitBlocked", { errors });
    undoButton.disabled = !summary.can_undo;
    grid.resize(summary);
    fillFilters();
  }

  async function applyView() {
    const view = {
      errors_only: viewSelect.value === "errors",
      field: fieldSelect.value || null,
      code: codeSelect.value || null,
    };
    await change("set_view", [JSON.stringify(view)]);
    grid.toTop();
  }
  viewSelect.addEventListener("change", applyView);
  fieldSelect.addEventListener("change", applyView);
  codeSelect.addEventListener("change", applyView);

  const button = (/** @type {string} */ id, /** @type {string} */ text, /** @type {() => void} */ onclick) =>
    el("button", { id, class: "secondary", text, onclick });
  render(
    ctx,
    summaryEl,
    policyEl,
    el(
      "div",
      { class: "toolbar" },
      viewSelect,
      fieldSelect,
      codeSelect,
      undoButton,
      button("delete-selected", t("review.deleteSelected"), () =>
        change("delete_rows", [JSON.stringify([...grid.selected])]),
      ),
      button("delete-error-rows", t("review.deleteErrorRows"), () => change("delete_rows_with_errors")),
    ),
    el(
      "div",
      { class: "toolbar" },
      replaceField,
      findInput,
      replaceInput,
      button("replace-apply", t("review.replaceApply"), () =>
        change("replace", [replaceField.value, findInput.value, replaceInput.value]),
      ),
    ),
    grid.element,
    detail,
    el("div", { class: "toolbar" }, submitButton, button("back", t("review.back"), () => showMapping(ctx, file, described))),
  );
  showSummary();
  grid.draw();
}
