// The review grid: an ARIA grid over a virtual list of the worker's rows; only the visible
// window is fetched. One cell is in the tab order (roving tabindex): arrows move, Enter or
// F2 edits, Escape cancels, Tab leaves the grid.
import { labelOf } from "../fields.js";
import { plural, t } from "../i18n/index.js";
import { el } from "./shell.js";

/** @typedef {import("../types.js").FieldInfo} FieldInfo */
/** @typedef {import("../types.js").WindowRow} WindowRow */
/** @typedef {import("../types.js").Summary} Summary */

export const ROW_HEIGHT = 30;
const OVERSCAN = 10;
const PAGE_ROWS = 10;
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
 * The scroll position that shows view row `position` (at the top when scaled).
 * @param {number} position
 * @param {{scroll: number, clientHeight: number, scrollHeight: number, viewRows: number}} view
 */
export function scrollFor(position, { scroll, clientHeight, scrollHeight, viewRows }) {
  const scaled = viewRows * ROW_HEIGHT > MAX_SCROLL_PX;
  if (scaled) {
    const range = scrollHeight - clientHeight;
    const rows = Math.max(1, viewRows - (clientHeight - ROW_HEIGHT) / ROW_HEIGHT);
    return Math.min(range, (position / rows) * range);
  }
  const top = position * ROW_HEIGHT;
  const bottom = top + 2 * ROW_HEIGHT - clientHeight; // the header takes a row
  if (top < scroll) return top;
  if (bottom > scroll) return bottom;
  return scroll;
}

/**
 * @typedef {object} GridHooks
 * @property {(start: number, count: number) => Promise<WindowRow[]>} fetchRows
 * @property {(name: string, args: unknown[]) => Promise<unknown>} change a bridge call that changes the rows
 * @property {(name: string, args: unknown[]) => Promise<unknown>} ask a bridge call that only reads
 * @property {HTMLElement} detail where the focused cell's problems and fix are shown
 * @property {HTMLElement} help where the focused field's description and allowed values are shown
 * @property {HTMLElement} announce a live region: the focused cell's problem, said once
 */

/**
 * @param {FieldInfo[]} shown the mapped fields, in template order
 * @param {GridHooks} hooks
 */
export function createGrid(shown, { fetchRows, change, ask, detail, help, announce }) {
  /** @type {Set<number>} */
  const selected = new Set();
  let viewRows = 0;
  let windowToken = 0;
  let windowStart = 0;
  /** @type {WindowRow[]} */
  let drawn = [];
  // The focused cell: its position in the view and its column (0 the check box, 1 the row
  // number, 2.. the fields).
  const focus = { position: 0, column: 2 };
  let editing = false;
  const columns = shown.length + 2;
  const oneTap = globalThis.matchMedia?.("(max-width: 480px), (pointer: coarse)");

  const header = el(
    "div",
    { class: "grid-row grid-head", role: "row", "aria-rowindex": "1" },
    el(
      "span",
      { class: "cell cell-check", role: "columnheader" },
      el("span", { class: "visually-hidden", text: t("review.selectColumn") }),
    ),
    el("span", { class: "cell cell-num", role: "columnheader", text: t("review.rowHeader") }),
    ...shown.map((f) => el("span", { class: "cell", role: "columnheader", text: f.label })),
  );
  const spacer = el("div", { class: "grid-spacer", "aria-hidden": "true" });
  const rowsEl = el("div", { class: "grid-rows", role: "rowgroup" });
  const grid = el(
    "div",
    { id: "grid", class: "grid", role: "grid", "aria-label": t("review.grid"), "aria-colcount": String(columns) },
    el("div", { role: "rowgroup", class: "grid-headgroup" }, header),
    spacer,
    rowsEl,
  );

  /** @param {WindowRow} row @param {FieldInfo} f */
  function showCell(row, f) {
    const errors = row.errors[f.name] || [];
    detail.replaceChildren(
      t("review.cellAt", { row: row.row, label: f.label }) + (errors.length ? errors.join(" ") : t("review.cellOk")),
    );
    const parts = [];
    if (f.description) parts.push(`${f.label}: ${f.description}`);
    if (f.allowed) parts.push(t("review.allowed", { values: f.allowed.join(", ") }));
    help.textContent = parts.join(" ");
    const fixes = row.fixes || {};
    if (!Object.hasOwn(fixes, f.name)) return;
    const fix = fixes[f.name];
    const fixColumn = el("button", {
      id: "fix-column",
      class: "secondary",
      text: t("review.fixColumn", { label: labelOf(shown, f.name) }),
      onclick: () => change("fix_column", [f.name]),
    });
    detail.append(
      el("span", { id: "fix-proposal", text: t("review.suggested", { value: String(fix) }) }),
      el("button", {
        id: "fix-apply",
        class: "secondary",
        text: t("review.apply"),
        onclick: () => change("edit", [row.index, f.name, JSON.stringify(fix)]),
      }),
      fixColumn,
    );
    // How many cells fixing the column changes, said on the button before it is pressed.
    ask("count_fix", [f.name]).then((count) => {
      fixColumn.textContent = plural("review.fixColumnCount", Number(count), { label: f.label });
    });
  }

  /** @param {WindowRow} row @param {number} at its position in the view */
  function renderRow(row, at) {
    const check = el("input", { type: "checkbox", tabindex: "-1", "aria-label": t("review.selectRow", { row: row.row }) });
    check.checked = selected.has(row.index);
    check.addEventListener("change", () => (check.checked ? selected.add(row.index) : selected.delete(row.index)));
    const cells = shown.map((f, i) => {
      const value = row.cells[f.name];
      const errors = row.errors[f.name] || [];
      const cell = el("span", {
        class: `cell${errors.length ? " cell-error" : ""}${row.edited.includes(f.name) ? " cell-edited" : ""}`,
        role: "gridcell",
        tabindex: "-1",
        "aria-colindex": String(i + 3),
        "data-field": f.name,
        "data-row": String(row.row),
        text: value == null ? "" : String(value),
      });
      if (errors.length) {
        cell.title = errors.join(" ");
        cell.dataset.error = errors.join(" ");
        cell.setAttribute("aria-invalid", "true");
      }
      cell.addEventListener("click", (event) => {
        moveTo(at, i + 2);
        // A phone: one tap edits (a double tap zooms).
        const touch = /** @type {PointerEvent} */ (event).pointerType === "touch";
        if (touch || oneTap?.matches) startEdit(cell, row, f);
      });
      cell.addEventListener("dblclick", () => startEdit(cell, row, f));
      return cell;
    });
    return el(
      "div",
      { class: "grid-row", role: "row", "aria-rowindex": String(at + 2), "data-index": String(row.index) },
      el("span", { class: "cell cell-check", role: "gridcell", tabindex: "-1", "aria-colindex": "1" }, check),
      rowNumber(row),
      ...cells,
    );
  }

  /** The row's number; a problem of the whole row (extra or missing cells) is shown here. */
  function rowNumber(/** @type {WindowRow} */ row) {
    const problems = row.row_errors || [];
    const cell = el("span", {
      class: `cell cell-num${problems.length ? " cell-error" : ""}`,
      role: "rowheader",
      tabindex: "-1",
      "aria-colindex": "2",
      "data-row": String(row.row),
      text: String(row.row),
    });
    if (problems.length) {
      cell.title = problems.join(" ");
      cell.dataset.error = problems.join(" ");
      cell.setAttribute("aria-invalid", "true");
    }
    return cell;
  }

  /**
   * @param {HTMLElement} cell
   * @param {WindowRow} row
   * @param {FieldInfo} f
   */
  function startEdit(cell, row, f) {
    if (editing) return;
    editing = true;
    const value = row.cells[f.name] == null ? "" : String(row.cells[f.name]);
    const label = t("review.editCell", { label: f.label, row: row.row });
    /** @type {HTMLInputElement | HTMLSelectElement} */
    let input;
    if (f.allowed) {
      // A list field: its allowed values to choose from, and the value the cell holds now.
      input = el("select", { class: "cell-input", "aria-label": label });
      if (!f.allowed.includes(value)) input.append(el("option", { value, text: value || t("review.chooseValue") }));
      for (const option of f.allowed) input.append(el("option", { value: option, text: option }));
      input.value = value;
    } else {
      input = el("input", { class: "cell-input", value, "aria-label": label });
    }
    let done = false;
    const finish = (/** @type {boolean} */ commit) => {
      if (done) return;
      done = true;
      editing = false;
      if (commit && input.value !== value) change("edit", [row.index, f.name, JSON.stringify(input.value)]);
      else draw().then(() => focusCell(true));
    };
    input.addEventListener("keydown", (/** @type {Event} */ e) => {
      const event = /** @type {KeyboardEvent} */ (e);
      event.stopPropagation(); // the grid's keys are the editor's while it is open
      if (event.key === "Enter") {
        event.preventDefault();
        finish(true);
      }
      if (event.key === "Escape") {
        event.preventDefault();
        finish(false);
      }
    });
    input.addEventListener("blur", () => finish(true));
    cell.replaceChildren(input);
    input.focus();
    if (input instanceof HTMLInputElement) input.select();
  }

  /** The element of the focused cell, if its row is drawn. */
  function focusedElement() {
    const row = rowsEl.children[focus.position - windowStart];
    return /** @type {HTMLElement | undefined} */ (row?.children[focus.column]);
  }

  /** Make the focused cell the one in the tab order; move the browser's focus to it if asked. */
  function focusCell(/** @type {boolean} */ take) {
    for (const old of grid.querySelectorAll('[tabindex="0"]')) old.setAttribute("tabindex", "-1");
    const cell = focusedElement() || /** @type {HTMLElement | null} */ (rowsEl.querySelector("[role=gridcell]"));
    if (!cell) return;
    cell.setAttribute("tabindex", "0");
    if (take) cell.focus({ preventScroll: true });
    const row = drawn[focus.position - windowStart];
    const f = shown[focus.column - 2];
    if (row && f && cell === focusedElement()) {
      showCell(row, f);
      const errors = row.errors[f.name] || [];
      if (take && errors.length) announce.textContent = t("review.cellAt", { row: row.row, label: f.label }) + errors.join(" ");
    } else if (row && focus.column === 1 && cell === focusedElement()) {
      // The row number: the problems of the whole row (extra or missing cells).
      const problems = row.row_errors || [];
      const text = t("review.rowAt", { row: row.row }) + (problems.length ? problems.join(" ") : t("review.cellOk"));
      detail.replaceChildren(text);
      help.textContent = "";
      if (take && problems.length) announce.textContent = text;
    }
  }

  /** Move the focus to view row `position`, column `column`, scrolling it into view. */
  async function moveTo(/** @type {number} */ position, /** @type {number} */ column) {
    focus.position = Math.max(0, Math.min(viewRows - 1, position));
    focus.column = Math.max(0, Math.min(columns - 1, column));
    const { scrollTop: scroll, clientHeight, scrollHeight } = grid;
    const target = scrollFor(focus.position, { scroll, clientHeight, scrollHeight, viewRows });
    if (target !== scroll || !focusedElement()) {
      grid.scrollTop = target;
      await draw();
    }
    focusCell(true);
  }

  grid.addEventListener("keydown", (event) => {
    if (editing) return;
    const { position, column } = focus;
    /** @type {Record<string, () => void>} */
    const moves = {
      ArrowDown: () => moveTo(position + 1, column),
      ArrowUp: () => moveTo(position - 1, column),
      ArrowRight: () => moveTo(position, column + 1),
      ArrowLeft: () => moveTo(position, column - 1),
      PageDown: () => moveTo(position + PAGE_ROWS, column),
      PageUp: () => moveTo(position - PAGE_ROWS, column),
      Home: () => moveTo(event.ctrlKey ? 0 : position, event.ctrlKey ? column : 0),
      End: () => moveTo(event.ctrlKey ? viewRows - 1 : position, event.ctrlKey ? column : columns - 1),
    };
    if (moves[event.key]) {
      event.preventDefault();
      moves[event.key]();
      return;
    }
    const cell = focusedElement();
    const row = drawn[focus.position - windowStart];
    if (!cell || !row) return;
    if ((event.key === "Enter" || event.key === "F2") && focus.column >= 2) {
      event.preventDefault();
      startEdit(cell, row, shown[focus.column - 2]);
    } else if (event.key === " " && focus.column === 0) {
      event.preventDefault();
      const check = /** @type {HTMLInputElement} */ (cell.querySelector("input"));
      check.checked = !check.checked;
      check.dispatchEvent(new Event("change"));
    }
  });

  async function draw() {
    // Scrolled while editing: the edit is kept (blur commits it) before its row is redrawn.
    if (editing && document.activeElement instanceof HTMLElement) document.activeElement.blur();
    const token = ++windowToken;
    const { scrollTop: scroll, clientHeight, scrollHeight } = grid;
    const { start, count, offset } = windowFor({ scroll, clientHeight, scrollHeight, viewRows });
    const rows = await fetchRows(start, count);
    if (token !== windowToken) return; // a newer scroll position won
    const hadFocus = grid.contains(document.activeElement) && !editing;
    windowStart = start;
    drawn = rows;
    rowsEl.style.transform = `translateY(${offset(rows.length)}px)`;
    rowsEl.replaceChildren(...rows.map((row, i) => renderRow(row, start + i)));
    focusCell(hadFocus);
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
    moveTo,
    get focused() {
      return { ...focus };
    },
    /** @param {string | null} name a field, or null for the row itself (its number) */
    columnOf: (name) => (name === null ? 1 : shown.findIndex((f) => f.name === name) + 2),
    /** @param {Summary} summary */
    resize(summary) {
      viewRows = summary.view_rows;
      grid.setAttribute("aria-rowcount", String(viewRows + 1));
      spacer.style.height = `${Math.min(viewRows * ROW_HEIGHT, MAX_SCROLL_PX)}px`;
      if (focus.position >= viewRows) focus.position = Math.max(0, viewRows - 1);
    },
    toTop() {
      grid.scrollTop = 0;
      focus.position = 0;
    },
  };
}
