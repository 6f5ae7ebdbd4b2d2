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
 * @property {import("./resume.js").Relay} relay the host page keeps the resume record (src/resume.js, `keeper`)
 */

// How long a "resume" request waits for the page (an embed.js too old to answer it).
const RELAY_WAIT_MS = 5000;

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
  /** @type {Map<number, (record: Record<string, unknown> | null) => void>} */
  const relayed = new Map();
  let nextRequest = 0;
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
    } else if (data.type === "resumed") {
      relayed.get(Number(data.request))?.(/** @type {Record<string, unknown> | null} */ (data.record));
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
    relay(action, key, record) {
      if (!embedded || !parent) return Promise.reject(new Error("no host page keeps the resume record"));
      const request = ++nextRequest;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          relayed.delete(request);
          reject(new Error("the host page did not answer"));
        }, RELAY_WAIT_MS);
        relayed.set(request, (kept) => {
          clearTimeout(timer);
          relayed.delete(request);
          resolve(/** @type {import("./resume.js").SavedUpload | undefined} */ (kept ?? undefined));
        });
        parent.postMessage(message("resume", { request, action, key, record }), parentOrigin);
      });
    },
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
