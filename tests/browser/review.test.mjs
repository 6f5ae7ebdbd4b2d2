// The review screen's wording and the grid's scrolling to a focused row.
import assert from "node:assert/strict";
import { test } from "node:test";

import { MAX_SCROLL_PX, ROW_HEIGHT, scrollFor, windowFor } from "../../browser/src/ui/grid.js";
import { codeLabel } from "../../browser/src/ui/review.js";

test("problem codes are shown as words, never as the code", () => {
  assert.equal(codeLabel("type-error"), "Wrong kind of value");
  assert.equal(codeLabel("enum"), "Not an allowed value");
  assert.equal(codeLabel("primary-key"), "Repeated key");
  assert.equal(codeLabel("something-new"), "Other problem");
});

test("moving the focus scrolls only as far as needed to show the row", () => {
  const view = { scroll: 0, clientHeight: 10 * ROW_HEIGHT, scrollHeight: 1000 * ROW_HEIGHT, viewRows: 1000 };
  assert.equal(scrollFor(3, view), 0); // on screen already
  assert.equal(scrollFor(20, view), 20 * ROW_HEIGHT + 2 * ROW_HEIGHT - 10 * ROW_HEIGHT); // at the bottom
  assert.equal(scrollFor(5, { ...view, scroll: 300 }), 5 * ROW_HEIGHT); // at the top
});

test("past the browser's height limit the row scrolled to is the row drawn at the top", () => {
  const viewRows = Math.ceil((MAX_SCROLL_PX * 2) / ROW_HEIGHT);
  const view = { scroll: 0, clientHeight: 300, scrollHeight: MAX_SCROLL_PX, viewRows };
  for (const position of [0, 12_345, Math.floor(viewRows / 2), viewRows - 20]) {
    const scroll = scrollFor(position, view);
    const { start } = windowFor({ ...view, scroll });
    const wanted = Math.max(0, position - 10); // 10 rows drawn above the view
    assert.ok(Math.abs(start - wanted) <= 1, `row ${position}: drawn from ${start}`);
  }
});
