// Strings: t() fills parameters, and every key the importer uses exists in the catalogue.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import en from "../../browser/src/i18n/en.js";
import {
  chooseLanguage,
  currentLanguage,
  formatSize,
  plural,
  t,
  overrideMessages,
  useLanguage,
} from "../../browser/src/i18n/index.js";

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

test("the client's wording replaces a key in every language; unknown keys are ignored", () => {
  overrideMessages({ "start.ready": "Prêt à importer.", "no.such.key": "x" });
  try {
    assert.equal(t("start.ready"), "Prêt à importer.");
    assert.equal(t("review.undo"), "Undo");
    useLanguage("de");
    assert.equal(t("start.ready"), "Prêt à importer.");
    assert.throws(() => t("no.such.key"), /no message for no.such.key/);
  } finally {
    overrideMessages({});
    useLanguage("en");
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

const LANGUAGES = ["de", "fr", "es", "ja"];
const params = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();

for (const lang of LANGUAGES) {
  test(`the ${lang} catalogue has exactly en's keys, each with the same {params}`, async () => {
    const { default: catalogue } = await import(`../../browser/src/i18n/${lang}.js`);
    assert.deepEqual(Object.keys(catalogue).sort(), Object.keys(en).sort());
    for (const [key, text] of Object.entries(en)) {
      assert.deepEqual(params(catalogue[key]), params(text), `${lang}: ${key}`);
      assert.ok(catalogue[key].trim(), `${lang}: ${key} is blank`);
    }
  });
}

test("the language comes from the SDK's locale, else the browser's, else English", () => {
  assert.equal(chooseLanguage(["de-AT", "fr"]), "de");
  assert.equal(chooseLanguage([null, "pt-BR", "ja-JP"]), "ja");
  assert.equal(chooseLanguage(["", "ES"]), "es");
  assert.equal(chooseLanguage(["pt", "zh-Hans"]), "en");
  assert.equal(chooseLanguage([]), "en");
});

test("plural forms and numbers follow the language", () => {
  try {
    assert.equal(plural("start.kept", 1), "Your data is kept for 1 day, then deleted.");
    assert.equal(plural("start.kept", 30), "Your data is kept for 30 days, then deleted.");
    assert.equal(plural("progress.checking", 12345), "Checking 12,345 rows…");
    useLanguage("de");
    assert.equal(currentLanguage(), "de");
    assert.equal(plural("start.kept", 1), "Ihre Daten werden 1 Tag lang aufbewahrt und dann gelöscht.");
    assert.equal(plural("progress.checking", 12345), "12.345 Zeilen werden geprüft…");
    assert.equal(formatSize(1.5 * 1024 ** 3), "1,5 GB");
    useLanguage("fr");
    assert.equal(plural("mapping.moreProblems", 0), "…et 0 autre."); // French: 0 is singular
    useLanguage("xx");
    assert.equal(currentLanguage(), "en");
  } finally {
    useLanguage("en");
  }
});
