// What every screen shares: the context it runs in, element building, the page frame,
// the error screen and the busy indicator.
import { formatNumber, t } from "../i18n/index.js";

/**
 * @typedef {object} Context
 * @property {import("../types.js").PageConfig} config
 * @property {import("../worker.js").Engine | import("../worker.js").RestartingEngine | import("../parallel.js").ParallelEngine} engine
 * @property {HTMLElement} root
 * @property {Promise<void>} booted
 * @property {(message: Record<string, unknown>) => void} notify tells the host page (embed.js)
 * @property {import("../host.js").Host} [host] the page that embeds the importer (src/host.js)
 * @property {import("../protocol.js").Step} [step] the last step told to the page
 */

/**
 * @typedef {{text?: string, [attribute: string]: unknown}} Attrs
 * `text` sets textContent, `on<event>` adds a listener, anything else is an attribute.
 */

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...(Node | string | null | undefined)} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = String(value);
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), /** @type {EventListener} */ (value));
    else node.setAttribute(key, String(value));
  }
  for (const child of children) if (child != null) node.append(child);
  return node;
}

/**
 * Replace the screen, under the template's heading, and move the focus to the new screen's
 * own heading (an h2 with tabindex -1), else the page's: a screen reader starts there, and
 * the keyboard is never left on a control that no longer exists.
 * @param {Context} ctx
 * @param {...(Node | null)} nodes
 */
export function render(ctx, ...nodes) {
  const { template } = ctx.config;
  const name = template.title || template.name || t("page.untitled");
  const title = el("h1", { tabindex: "-1", text: t("page.title", { name }) });
  ctx.root.replaceChildren(title, ...nodes.filter((n) => n != null));
  const heading = /** @type {HTMLElement | null} */ (ctx.root.querySelector("h2[tabindex='-1']"));
  (heading || title).focus();
}

/**
 * Tell the page (its `onStep`) the user reached `step`; a screen drawn again (a new header
 * row, a new encoding) is not a new step.
 * @param {Context} ctx
 * @param {import("../protocol.js").Step} name
 */
export function step(ctx, name) {
  if (ctx.step === name) return;
  ctx.step = name;
  ctx.host?.send("step", { step: name });
}

/**
 * @typedef {{id: string, text: string, onclick: () => void}} Action
 */

/**
 * An error the user can act on, with a way on (by default, picking another file).
 * @param {Context} ctx
 * @param {string} message
 * @param {Action[]} actions
 */
export function showError(ctx, message, actions) {
  render(
    ctx,
    el("h2", { tabindex: "-1", text: t("error.heading") }),
    el("p", { id: "error", class: "error", role: "alert", text: message }),
    ...actions.map(({ id, text, onclick }) => el("button", { id, text, onclick })),
  );
}

/** @param {string} text */
export function busy(text) {
  return [el("p", { id: "busy", text }), el("progress", { id: "busy-progress", class: "busy" })];
}

/**
 * Counts from the worker while it reads or checks.
 * @param {import("../types.js").Progress} progress
 */
export function showProgress({ phase, done, total }) {
  const text = document.getElementById("busy");
  const bar = /** @type {HTMLProgressElement | null} */ (document.getElementById("busy-progress"));
  if (!text || !bar) return;
  if (phase === "parse") {
    text.textContent = t("progress.parse", { rows: formatNumber(done) });
  } else if (phase === "validate") {
    text.textContent = t("progress.validate", { done: formatNumber(done), total: formatNumber(total) });
    bar.max = total;
    bar.value = done;
  }
}
