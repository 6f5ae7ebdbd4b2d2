// The importer's side of the SDK protocol (browser/src/protocol.js): it posts only to the
// parent origin the server validated against the organisation's allowed origins
// (server/importer/routes.py), and accepts only that window's messages from that origin.
import { accept, cleanText, cleanTheme, message } from "./protocol.js";

/**
 * @typedef {object} HostOptions what the page sent in its "init" message
 * @property {import("./protocol.js").Theme} theme
 * @property {Record<string, string>} text
 * @property {string} identity the signed end-user identity, "" when none
 */

/**
 * @typedef {object} Host
 * @property {(type: string, fields?: Record<string, unknown>) => void} send
 * @property {() => HostOptions} options
 * @property {(importId: string) => Promise<void>} acknowledged resolves when the page acknowledges the rows of `importId`
 * @property {(listener: (options: HostOptions) => void) => void} onInit
 * @property {(listener: () => void) => void} onClose
 */

/**
 * @param {{parentOrigin: string, parent: Window | null, self: Window}} where
 * @returns {Host}
 */
export function connectHost({ parentOrigin, parent, self }) {
  /** @type {HostOptions} */
  let options = { theme: {}, text: {}, identity: "" };
  /** @type {Map<string, () => void>} */
  const waiting = new Map();
  /** @type {Set<string>} */
  const acked = new Set();
  /** @type {((options: HostOptions) => void)[]} */
  const inits = [];
  /** @type {(() => void)[]} */
  const closes = [];
  const embedded = parent !== null && parent !== self;

  self.addEventListener("message", (event) => {
    const data = accept(event, { origin: parentOrigin, source: parent }, "importer");
    if (!data) return;
    if (data.type === "init") {
      options = { theme: cleanTheme(data.theme), text: cleanText(data.text), identity: String(data.identity) };
      for (const listener of inits) listener(options);
    } else if (data.type === "ack") {
      const importId = String(data.importId);
      acked.add(importId);
      waiting.get(importId)?.();
    } else if (data.type === "close") {
      for (const listener of closes) listener();
    }
  });

  return {
    send(type, fields = {}) {
      if (embedded && parent) parent.postMessage(message(type, fields), parentOrigin);
    },
    options: () => options,
    acknowledged(importId) {
      if (acked.has(importId)) return Promise.resolve();
      return new Promise((resolve) => waiting.set(importId, () => resolve(undefined)));
    },
    onInit: (listener) => void inits.push(listener),
    onClose: (listener) => void closes.push(listener),
  };
}

/**
 * The theme as CSS variables on the page: --loadbay-primary, --loadbay-font, ...
 * (importer.css reads them; README, "Theming").
 * @param {HTMLElement} root
 * @param {import("./protocol.js").Theme} theme
 */
export function applyTheme(root, theme) {
  for (const [key, value] of Object.entries(theme)) {
    root.style.setProperty(`--loadbay-${key}`, key === "logo" ? `url("${value}")` : String(value));
  }
  if (theme.logo) root.setAttribute("data-loadbay-logo", "");
}
