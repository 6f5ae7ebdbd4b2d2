// t(key, params): the one way the importer turns a message key into text, so strings can be
// translated without touching the screens. English is the only catalogue so far.
import en from "./en.js";

/** @typedef {keyof typeof en} MessageKey */
/** @typedef {Record<string, string | number>} MessageParams */

/** @type {Record<string, string>} */
let catalogue = en;

/**
 * Swap the catalogue (tests and, later, other languages); unknown keys fall back to English.
 * @param {Record<string, string>} messages
 */
export function useMessages(messages) {
  catalogue = { ...en, ...messages };
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
  const template = overrides[key] ?? catalogue[key] ?? en[key];
  if (template === undefined) throw new Error(`loadbay: no message for ${key}`);
  return template.replace(/\{(\w+)\}/g, (whole, name) =>
    name in params ? String(params[name]) : whole,
  );
}

/**
 * A byte count as the user reads it: "1.5 GB", "300 MB".
 * @param {number} bytes
 */
export function formatSize(bytes) {
  return bytes >= 1024 ** 3
    ? t("size.gb", { size: (bytes / 1024 ** 3).toFixed(1) })
    : t("size.mb", { size: Math.round(bytes / 1024 ** 2) });
}

/** The page's language, as the document declares it (the i18n plumbing sets it). */
function locale() {
  return globalThis.document?.documentElement?.lang || "en";
}

/**
 * A number as the user's locale writes it: 12,345 in English, 12.345 in German.
 * @param {number} value
 */
export function formatNumber(value) {
  return new Intl.NumberFormat(locale()).format(value);
}

/**
 * `key` in the plural form `count` calls for (`key.one`, `key.other`, … by Intl.PluralRules),
 * with every number parameter formatted for the locale.
 * @param {string} key a message key without its plural suffix
 * @param {number} count
 * @param {MessageParams} [params]
 * @returns {string}
 */
export function plural(key, count, params = {}) {
  const form = new Intl.PluralRules(locale()).select(count);
  const chosen = `${key}.${form}` in catalogue || `${key}.${form}` in en ? `${key}.${form}` : `${key}.other`;
  /** @type {MessageParams} */
  const formatted = {};
  for (const [name, value] of Object.entries({ count, ...params })) {
    formatted[name] = typeof value === "number" ? formatNumber(value) : value;
  }
  return t(/** @type {MessageKey} */ (chosen), formatted);
}
