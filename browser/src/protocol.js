// The postMessage protocol between the client's page (embed.js) and the importer page (the
// iframe loadbay serves). One module, imported by the importer and bundled into embed.js by
// tools/build_assets.py, so both sides build and check messages with the same code.
//
// Every message is {protocol: "loadbay", version, type, ...}. A receiver accepts a message
// only from the one window and the one origin it expects (`accept`), only of a type that
// side may receive, and only in that type's shape; anything else is ignored, never thrown.

export const PROTOCOL = "loadbay";
export const VERSION = 1;

/**
 * What the importer tells the page.
 * @typedef {{type: "ready"}} ReadyMessage
 * @typedef {{type: "step", step: Step}} StepMessage
 * @typedef {{type: "data", importId: string, rows: Record<string, unknown>[], total: number}} DataMessage
 * @typedef {{type: "complete", importId: string, rows: number, status: string}} CompleteMessage
 * @typedef {{type: "cancel"}} CancelMessage
 * @typedef {{type: "error", message: string}} ErrorMessage
 * @typedef {{type: "resume", request: number, action: "load" | "save" | "delete", key: string, record?: Record<string, unknown>}} ResumeMessage
 *   where the browser refuses the importer frame its IndexedDB: keep, give back or delete
 *   the resume record of `key` (src/resume.js: ids, token, mapping, edits, a fingerprint;
 *   never the file's cells) in the page's own storage
 * @typedef {ReadyMessage | StepMessage | DataMessage | CompleteMessage | CancelMessage | ErrorMessage | ResumeMessage} ToHost
 *
 * What the page tells the importer: its options once the importer is ready, the
 * acknowledgement of rows it was handed (host-page destination), and "close".
 * @typedef {{type: "init", theme: Theme, text: Record<string, string>, identity: string}} InitMessage
 * @typedef {{type: "ack", importId: string}} AckMessage
 * @typedef {{type: "close"}} CloseMessage
 * @typedef {{type: "resumed", request: number, record: Record<string, unknown> | null}} ResumedMessage
 *   the answer to a "resume" request: the record kept for its key (load), else null
 * @typedef {InitMessage | AckMessage | CloseMessage | ResumedMessage} ToImporter
 */

/**
 * The steps the importer reports to the page's `onStep`, in the order a user passes them
 * (README, "Embedding loadbay"): the page is loaded (`ready`), the engine booted
 * (`engine-ready`), the file picker shown (`start`), the columns mapped (`mapping`), the rows
 * reviewed (`review`), the rows sent (`submitting`), the import over (`done`); and
 * `over-host-page-cap` when the rows are more than a host-page destination takes.
 * Cancelling and errors have their own callbacks (onCancel, onError).
 * @typedef {"ready" | "engine-ready" | "start" | "mapping" | "review" | "submitting" | "done" | "over-host-page-cap"} Step
 */
export const STEPS = ["ready", "engine-ready", "start", "mapping", "review", "submitting", "done", "over-host-page-cap"];

/**
 * Theme keys, the same the dashboard's theme settings use (README, "Theming"). Each becomes
 * the CSS variable `--loadbay-<key>` on the importer page.
 * @typedef {{primary?: string, background?: string, text?: string, error?: string, font?: string, radius?: string, logo?: string}} Theme
 */
export const THEME_KEYS = ["primary", "background", "text", "error", "font", "radius", "logo"];

var COLOUR = /^(#[0-9a-fA-F]{3,8}|(rgb|rgba|hsl|hsla)\([0-9.,%\s]{1,60}\)|[a-zA-Z]{3,20})$/;
var FONT = /^[A-Za-z0-9 ,"'-]{1,120}$/;
var LENGTH = /^[0-9]{1,3}(\.[0-9]{1,2})?(px|rem|em)$/;
// The importer's CSP allows images from loadbay's origin and data: URLs only.
var LOGO = /^data:image\/(png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=]{1,400000}$/;
/** @type {Record<string, RegExp>} */
var THEME_RULES = {
  primary: COLOUR,
  background: COLOUR,
  text: COLOUR,
  error: COLOUR,
  font: FONT,
  radius: LENGTH,
  logo: LOGO,
};

/**
 * The theme values that are safe to apply; unknown keys and malformed values are dropped.
 * @param {unknown} theme
 * @returns {Theme}
 */
export function cleanTheme(theme) {
  /** @type {Record<string, string>} */
  var out = {};
  if (!isObject(theme)) return out;
  var given = /** @type {Record<string, unknown>} */ (theme);
  for (var i = 0; i < THEME_KEYS.length; i++) {
    var key = THEME_KEYS[i];
    var value = given[key];
    if (typeof value === "string" && THEME_RULES[key].test(value)) out[key] = value;
  }
  return out;
}

/**
 * Text overrides: message key -> text, strings only, at most 500 characters each.
 * @param {unknown} text
 * @returns {Record<string, string>}
 */
export function cleanText(text) {
  /** @type {Record<string, string>} */
  var out = {};
  if (!isObject(text)) return out;
  var given = /** @type {Record<string, unknown>} */ (text);
  for (var key in given) {
    var value = given[key];
    if (Object.prototype.hasOwnProperty.call(given, key) && /^[a-zA-Z][\w.]{0,80}$/.test(key) && typeof value === "string" && value.length <= 500) {
      out[key] = value;
    }
  }
  return out;
}

/**
 * @param {string} type
 * @param {Record<string, unknown>} [fields]
 * @returns {Record<string, unknown>}
 */
export function message(type, fields) {
  /** @type {Record<string, unknown>} */
  var out = { protocol: PROTOCOL, version: VERSION, type: type };
  for (var key in fields || {}) {
    if (Object.prototype.hasOwnProperty.call(fields, key)) out[key] = /** @type {Record<string, unknown>} */ (fields)[key];
  }
  return out;
}

/** @type {Record<string, (m: Record<string, unknown>) => boolean>} */
var TO_HOST_SHAPES = {
  ready: function () {
    return true;
  },
  step: function (m) {
    return STEPS.indexOf(/** @type {string} */ (m.step)) >= 0;
  },
  data: function (m) {
    return typeof m.importId === "string" && Array.isArray(m.rows) && typeof m.total === "number";
  },
  complete: function (m) {
    return typeof m.importId === "string" && typeof m.rows === "number" && typeof m.status === "string";
  },
  cancel: function () {
    return true;
  },
  error: function (m) {
    return typeof m.message === "string";
  },
  resume: function (m) {
    return (
      typeof m.request === "number" &&
      RESUME_ACTIONS.indexOf(/** @type {string} */ (m.action)) >= 0 &&
      typeof m.key === "string" &&
      m.key.length <= 300 &&
      (m.action !== "save" || isObject(m.record))
    );
  },
};

var RESUME_ACTIONS = ["load", "save", "delete"];

/** @type {Record<string, (m: Record<string, unknown>) => boolean>} */
var TO_IMPORTER_SHAPES = {
  init: function (m) {
    return isObject(m.theme) && isObject(m.text) && typeof m.identity === "string";
  },
  ack: function (m) {
    return typeof m.importId === "string";
  },
  close: function () {
    return true;
  },
  resumed: function (m) {
    return typeof m.request === "number" && (m.record === null || isObject(m.record));
  },
};

/**
 * The message of `event` if it comes from `from` (window and origin) and has the shape
 * its type needs on this side ("host" or "importer"); otherwise null.
 * @param {MessageEvent} event
 * @param {{origin: string, source: unknown}} from
 * @param {"host" | "importer"} side which side is receiving
 * @returns {Record<string, unknown> | null}
 */
export function accept(event, from, side) {
  if (!from.source || event.source !== from.source || event.origin !== from.origin) return null;
  var data = event.data;
  if (!isObject(data) || data.protocol !== PROTOCOL || data.version !== VERSION) return null;
  var shapes = side === "host" ? TO_HOST_SHAPES : TO_IMPORTER_SHAPES;
  var type = data.type;
  if (typeof type !== "string" || !Object.prototype.hasOwnProperty.call(shapes, type)) return null;
  return shapes[type](data) ? data : null;
}

/**
 * @param {unknown} value
 * @returns {value is Record<string, any>}
 */
function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
