// t(key, params): the one way the importer turns a message key into text, so strings can be
// translated without touching the screens. One catalogue per language, each with en's keys.
import de from "./de.js";
import en from "./en.js";
import es from "./es.js";
import fr from "./fr.js";
import ja from "./ja.js";

/** @typedef {keyof typeof en} MessageKey */
/** @typedef {Record<string, string | number>} MessageParams */

/** @type {Record<string, Record<string, string>>} */
export const CATALOGUES = { en, de, fr, es, ja };

/** @type {Record<string, string>} */
let catalogue = en;
let language = "en";

/**
 * The language to show: the first of `wanted` (the SDK's `locale`, then the browser's
 * navigator.languages) that the importer speaks, by its primary subtag ("de-AT" is "de").
 * @param {readonly (string | null | undefined)[]} wanted
 * @returns {string}
 */
export function chooseLanguage(wanted) {
  for (const tag of wanted) {
    const primary = (tag || "").toLowerCase().split(/[-_]/)[0];
    if (Object.hasOwn(CATALOGUES, primary)) return primary;
  }
  return "en";
}

/**
 * Speak `lang` from now on; the document says so too (screen readers, hyphenation).
 * @param {string} lang one of CATALOGUES' keys
 */
export function useLanguage(lang) {
  language = Object.hasOwn(CATALOGUES, lang) ? lang : "en";
  catalogue = CATALOGUES[language];
  const root = globalThis.document?.documentElement;
  if (root) root.lang = language;
}

/** The language the importer speaks now. */
export function currentLanguage() {
  return language;
}

/** @type {Record<string, string>} */
let overrides = {};

/**
 * The client's own wording for some keys (the template's `x-loadbay.text`, then the SDK's
 * `text` option), over whichever language is in use; unknown keys are ignored.
 * @param {Record<string, string>} texts
 */
export function overrideMessages(texts) {
  overrides = Object.fromEntries(Object.entries(texts).filter(([key]) => key in en));
}

/**
 * @param {MessageKey} key
 * @param {MessageParams} [params]
 * @returns {string}
 */
export function t(key, params = {}) {
  const template = overrides[key] ?? catalogue[key] ?? /** @type {Record<string, string>} */ (en)[key];
  if (template === undefined) throw new Error(`loadbay: no message for ${key}`);
  return template.replace(/\{(\w+)\}/g, (whole, name) =>
    name in params ? String(params[name]) : whole,
  );
}

/**
 * A number as the user's language writes it: 12,345 in English, 12.345 in German.
 * @param {number} value
 * @param {Intl.NumberFormatOptions} [options]
 */
export function formatNumber(value, options) {
  return new Intl.NumberFormat(language, options).format(value);
}

/**
 * `key` in the plural form `count` calls for (`key.one`, `key.other`, … by Intl.PluralRules),
 * with every number parameter formatted for the language.
 * @param {string} key a message key without its plural suffix
 * @param {number} count
 * @param {MessageParams} [params]
 * @returns {string}
 */
export function plural(key, count, params = {}) {
  const form = new Intl.PluralRules(language).select(count);
  const chosen = `${key}.${form}` in catalogue || `${key}.${form}` in en ? `${key}.${form}` : `${key}.other`;
  /** @type {MessageParams} */
  const formatted = {};
  for (const [name, value] of Object.entries({ count, ...params })) {
    formatted[name] = typeof value === "number" ? formatNumber(value) : value;
  }
  return t(/** @type {MessageKey} */ (chosen), formatted);
}

/**
 * A byte count as the user reads it: "1.5 GB", "300 MB".
 * @param {number} bytes
 */
export function formatSize(bytes) {
  return bytes >= 1024 ** 3
    ? t("size.gb", { size: formatNumber(bytes / 1024 ** 3, { maximumFractionDigits: 1, minimumFractionDigits: 1 }) })
    : t("size.mb", { size: formatNumber(Math.round(bytes / 1024 ** 2)) });
}
