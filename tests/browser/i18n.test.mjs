// Strings: t() fills parameters, and every key the importer uses exists in the catalogue.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import en from "../../browser/src/i18n/en.js";
import { formatSize, t, useMessages } from "../../browser/src/i18n/index.js";

const BROWSER = new URL("../../browser/", import.meta.url).pathname;

function sources(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "node_modules" ? [] : sources(path);
    return /\.m?js$/.test(entry.name) ? [path] : [];
  });
}

test("t fills named parameters and leaves unknown ones visible", () => {
  assert.equal(t("review.summaryValid", { rows: 12 }), "All 12 rows are valid.");
  assert.equal(t("upload.busy", { seconds: 5 }), "The server is busy; retrying in 5 s…");
  assert.equal(t("review.summaryValid"), "All {rows} rows are valid.");
});

test("an unknown key is a bug, not a blank", () => {
  assert.throws(() => t("no.such.key"), /no message for no.such.key/);
});

test("another catalogue replaces strings; missing ones fall back to English", () => {
  useMessages({ "start.ready": "Prêt." });
  try {
    assert.equal(t("start.ready"), "Prêt.");
    assert.equal(t("review.undo"), "Undo");
  } finally {
    useMessages({});
  }
});

test("sizes read as the user reads them", () => {
  assert.equal(formatSize(300 * 1024 ** 2), "300 MB");
  assert.equal(formatSize(1.5 * 1024 ** 3), "1.5 GB");
});

test("every literal key passed to t() is in en.js", () => {
  const used = new Set();
  for (const file of sources(BROWSER)) {
    for (const match of readFileSync(file, "utf8").matchAll(/\bt\(\s*"([^"]+)"/g)) used.add(match[1]);
  }
  assert.ok(used.size > 40, `only ${used.size} keys found`);
  assert.deepEqual([...used].filter((key) => !(key in en)), []);
});

test("plural picks the form the count calls for and formats numbers for the locale", async () => {
  const { plural, formatNumber } = await import("../../browser/src/i18n/index.js");
  assert.equal(plural("review.changed", 1), "Changed 1 cell.");
  assert.equal(plural("review.changed", 0), "Changed 0 cells.");
  assert.equal(plural("review.changed", 1234), "Changed 1,234 cells.");
  assert.equal(formatNumber(1234567), "1,234,567");
});
