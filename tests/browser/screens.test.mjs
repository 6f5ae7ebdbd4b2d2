// What the screens say is the server's and the engine's word, put into the user's language.
import assert from "node:assert/strict";
import { test } from "node:test";

import { confirmedMapping, matchText } from "../../browser/src/ui/mapping.js";
import { retentionText } from "../../browser/src/ui/start.js";
import { doneText } from "../../browser/src/ui/submit.js";

const state = (status) => ({ id: "imp_1", status, final: true, rows: 2, batches: 1, deliveries: {} });

test("the done screen shows the status the server reports, known or not", () => {
  assert.equal(doneText(state("delivered"), 2), "Delivered 2 rows.");
  assert.equal(doneText(state("failed"), 2).startsWith("Your 2 rows were received, but delivery failed."), true);
  assert.equal(doneText(state("expired"), 2).startsWith("Your 2 rows were not delivered before"), true);
  assert.equal(doneText(state("archived"), 2), "Import finished with status “archived” (2 rows).");
});

test("the start screen says how long the rows are kept, as the server decided", () => {
  const kept = (days) => retentionText({ days, passthrough: false, organisation: "Acme" });
  assert.equal(kept(30), "Your data is kept for 30 days, then deleted.");
  assert.equal(kept(1), "Your data is kept for 1 day, then deleted.");
  assert.equal(
    retentionText({ days: 0, passthrough: true, organisation: "Acme" }),
    "Your data is not stored: it goes straight to Acme and nowhere else.",
  );
});

test("the done screen says how many rows the valid-only policy left out", () => {
  const leftOut = { ...state("delivered"), left_out: 3 };
  assert.equal(doneText(leftOut, 2), "Delivered 2 rows. 3 rows with problems were left out.");
});

test("the done screen's plurals follow the count, and rows deleted in review are counted", () => {
  const one = { ...state("delivered"), left_out: 1 };
  assert.equal(
    doneText(one, 1, 1),
    "Delivered 1 row. 1 row with problems was left out. 1 row you deleted was left out.",
  );
  assert.equal(doneText(state("delivered"), 12345, 2), "Delivered 12,345 rows. 2 rows you deleted were left out.");
});

test("how a column was proposed comes from the engine's match", () => {
  assert.equal(matchText({ field: "a", source: "fuzzy", confidence: 0.834 }), "likely match (83%)");
  assert.equal(matchText({ field: "a", source: "remembered" }), "as last time");
  assert.equal(matchText({ field: "a", source: "exact" }), "exact match");
  assert.equal(matchText(undefined), "");
});

test("a mapping is remembered only once the user confirmed the header row", () => {
  // For a file without a header row the engine's proposed "headers" are the first row's cells.
  const described = { headers: ["Amélie Poulain", "amelie@example.fr", "FR"], options: {} };
  const mapping = { full_name: 0, email: 1 };
  assert.equal(confirmedMapping(described, mapping), undefined);
  assert.equal(confirmedMapping({ ...described, headerConfirmed: false }, mapping), undefined);
  assert.deepEqual(confirmedMapping({ ...described, headerConfirmed: true }, mapping), {
    full_name: "Amélie Poulain",
    email: "amelie@example.fr",
  });
});
