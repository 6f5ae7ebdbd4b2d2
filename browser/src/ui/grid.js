// The review grid: a virtual list over the worker's rows; only the visible window is fetched.
import { labelOf } from "../fields.js";
import { t } from "../i18n/index.js";
import { el } from "./shell.js";

/** @typedef {import("../types.js").FieldInfo} FieldInfo */
/** @typedef {import("../types.js").WindowRow} WindowRow */
/** @typedef {import("../types.js").Summary} Summary */

export const ROW_HEIGHT = 30;
const OVERSCAN = 10;
// Browsers cap an element's height (Chromium at about 33.5M px: 1.1M rows of 30 px). Past
// this height the scrollbar is scaled: its position picks the row, the rows are drawn at
// their natural height around it. LOADBAY_GRID_MAX_PX lowers it (the tests do).
export const MAX_SCROLL_PX =
  Number(/** @type {{LOADBAY_GRID_MAX_PX?: number}} */ (globalThis).LOADBAY_GRID_MAX_PX) || 15_000_000;

/**
 * Which rows to fetch for a scroll position, and where to draw them.
 * @param {{scroll: number, clientHeight: number, scrollHeight: number, viewRows: number}} view
 * @returns {{start: number, count: number, offset: (fetched: number) => number}}
 */
export function windowFor({ scroll, clientHeight, scrollHeight, viewRows }) {
  const visible = Math.ceil(clientHeight / ROW_HEIGHT);
  const scaled = viewRows * ROW_HEIGHT > MAX_SCROLL_PX;
  // The (fractional) row at the top of the view: scroll / ROW_HEIGHT, or, when scaled, the
  // same share of all rows as the scrollbar's share of its range.
  const range = scrollHeight - clientHeight;
  const top =
    scaled && range > 0
      ? (scroll / range) * Math.max(0, viewRows - (clientHeight - ROW_HEIGHT) / ROW_HEIGHT)
      : scroll / ROW_HEIGHT;
  const start = Math.max(0, Math.floor(top) - OVERSCAN);
  // Scaled, nothing is drawn below the view: rows there would stretch the scroll range.
  const count = Math.floor(top) - start + visible + (scaled ? 1 : OVERSCAN);
  const offset = (/** @type {number} */ fetched) =>
    scaled
      ? Math.max(0, Math.min(scroll + (start - top) * ROW_HEIGHT, MAX_SCROLL_PX - fetched * ROW_HEIGHT))
      : start * ROW_HEIGHT;
  return { start, count, offset };
}

/**
 * @typedef {object} GridHooks
 * @property {(start: number, count: number) => Promise<WindowRow[]>} fetchRows
 * @property {(name: string, args: unknown[]) => void} change a bridge call that changes the rows
 * @property {HTMLElement} detail where a clicked cell's problems and fix are shown
 */

/**
 * @param {FieldInfo[]} shown the mapped fields, in template order
 * @param {GridHooks} hooks
 */
export function createGrid(shown, { fetchRows, change, detail }) {
  /** @type {Set<number>} */
  const selected = new Set();
  let viewRows = 0;
  let windowToken = 0;
  const header = el(
    "div",
    { class: "grid-row grid-head" },
    el("span", { class: "cell cell-check" }),
    el("span", { class: "cell cell-num", text: t("review.rowHeader") }),
    ...shown.map((f) => el("span", { class: "cell", text: f.label })),
  );
  const spacer = el("div", { class: "grid-spacer" });
  const rowsEl = el("div", { class: "grid-rows" });
  const grid = el("div", { id: "grid", class: "grid", tabindex: "0" }, header, spacer, rowsEl);

  /**
   * @param {HTMLElement} cell
   * @param {WindowRow} row
   * @param {FieldInfo} f
   * @param {string[]} errors
   */
  function showCell(cell, row, f, errors) {
    detail.replaceChildren(
      t("review.cellAt", { row: row.row, label: f.label }) + (errors.length ? errors.join(" ") : t("review.cellOk")),
    );
    const fixes = row.fixes || {};
    if (!Object.hasOwn(fixes, f.name)) return;
    const fix = fixes[f.name];
    detail.append(
      el("span", { id: "fix-proposal", text: t("review.suggested", { value: String(fix) }) }),
      el("button", {
        id: "fix-apply",
        class: "secondary",
        text: t("review.apply"),
        onclick: () => change("edit", [row.index, f.name, JSON.stringify(fix)]),
      }),
      el("button", {
        id: "fix-column",
        class: "secondary",
        text: t("review.fixColumn", { label: labelOf(shown, f.name) }),
        onclick: () => change("fix_column", [f.name]),
      }),
    );
  }

  /** @param {WindowRow} row */
  function renderRow(row) {
    const check = el("input", { type: "checkbox", "aria-label": t("review.selectRow", { row: row.row }) });
    check.checked = selected.has(row.index);
    check.addEventListener("change", () => (check.checked ? selected.add(row.index) : selected.delete(row.index)));
    const cells = shown.map((f) => {
      const value = row.cells[f.name];
      const errors = row.errors[f.name] || [];
      const cell = el("span", {
        class: `cell${errors.length ? " cell-error" : ""}${row.edited.includes(f.name) ? " cell-edited" : ""}`,
        "data-field": f.name,
        "data-row": String(row.row),
        text: value == null ? "" : String(value),
      });
      if (errors.length) {
        cell.title = errors.join(" ");
        cell.dataset.error = errors.join(" ");
      }
      cell.addEventListener("click", () => showCell(cell, row, f, errors));
      cell.addEventListener("dblclick", () => startEdit(cell, row, f, value == null ? "" : String(value)));
      return cell;
    });
    return el(
      "div",
      { class: "grid-row", "data-index": String(row.index) },
      el("span", { class: "cell cell-check" }, check),
      el("span", { class: "cell cell-num", text: String(row.row) }),
      ...cells,
    );
  }

  /**
   * @param {HTMLElement} cell
   * @param {WindowRow} row
   * @param {FieldInfo} f
   * @param {string} value
   */
  function startEdit(cell, row, f, value) {
    const input = el("input", { class: "cell-input", value, "aria-label": t("review.editCell", { label: f.label, row: row.row }) });
    let done = false;
    const finish = (/** @type {boolean} */ commit) => {
      if (done) return;
      done = true;
      if (commit && input.value !== value) change("edit", [row.index, f.name, JSON.stringify(input.value)]);
      else draw();
    };
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter") finish(true);
      if (event.key === "Escape") finish(false);
    });
    input.addEventListener("blur", () => finish(true));
    cell.replaceChildren(input);
    input.focus();
    input.select();
  }

  async function draw() {
    const token = ++windowToken;
    const { scrollTop: scroll, clientHeight, scrollHeight } = grid;
    const { start, count, offset } = windowFor({ scroll, clientHeight, scrollHeight, viewRows });
    const rows = await fetchRows(start, count);
    if (token !== windowToken) return; // a newer scroll position won
    rowsEl.style.transform = `translateY(${offset(rows.length)}px)`;
    rowsEl.replaceChildren(...rows.map(renderRow));
  }

  let scheduled = false;
  grid.addEventListener("scroll", () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(() => {
      scheduled = false;
      draw();
    });
  });

  return {
    element: grid,
    selected,
    draw,
    /** @param {Summary} summary */
    resize(summary) {
      viewRows = summary.view_rows;
      spacer.style.height = `${Math.min(viewRows * ROW_HEIGHT, MAX_SCROLL_PX)}px`;
    },
    toTop() {
      grid.scrollTop = 0;
    },
  };
}
