// loadbay embed SDK: <script src=".../embed.js"></script> then loadbay.open({...}), or the
// <loadbay-importer> element. The importer runs in an iframe on loadbay's origin; messages
// come back through protocol.js, accepted only from that iframe and that origin.
// tools/build_assets.py bundles this module and protocol.js into one classic script.
import { accept, cleanText, cleanTheme, message } from "../src/protocol.js";

/**
 * @typedef {object} OpenOptions
 * @property {string} [server] the loadbay origin (default: where embed.js was loaded from)
 * @property {string} publishableKey
 * @property {string} template a template id
 * @property {string} [user] a signed identity token from the client's backend (README, "End-user identity")
 * @property {string} [identity] the same as `user`
 * @property {Record<string, unknown>} [metadata] shown to the client's own callbacks only; the server trusts the signed token
 * @property {string} [locale] "en", "de", "fr", "es", "ja"
 * @property {import("../src/protocol.js").Theme} [theme]
 * @property {Record<string, string>} [text] message key -> text
 * @property {HTMLElement} [container] inline in this element; without it, a modal
 * @property {(step: import("../src/protocol.js").Step) => void} [onStep] "ready", "engine-ready", "start", "mapping", "review", "submitting", "done", "over-host-page-cap"
 * @property {(data: {importId: string, rows: Record<string, unknown>[], total: number}) => (void | Promise<void>)} [onData]
 * @property {(result: {importId: string, rows: number, status: string}) => void} [onComplete]
 * @property {() => void} [onCancel]
 * @property {(error: {message: string}) => void} [onError]
 */

/**
 * @typedef {object} Importer
 * @property {HTMLIFrameElement} iframe
 * @property {() => void} close removes the importer (onCancel is called if it was not complete)
 */

var script = /** @type {HTMLScriptElement | null} */ (document.currentScript);
var preloaded = false; // once per page: preload() ran, or an importer was opened
/** @type {Started | null} an importer booted ahead by preload(options), not yet shown */
var warm = null;
/**
 * Importers closed on this page, kept hidden with their booted engine: the next open() with
 * the same server, key, template, locale and container shows one at once, ready.
 * @type {Started[]}
 */
var kept = [];
// At most this many kept importers (each holds a Pyodide engine in memory).
var KEPT_MAX = 2;
var scriptOrigin = script && script.src ? new URL(script.src).origin : "";

/** @param {OpenOptions} options */
function serverOf(options) {
  var server = options.server ? new URL(options.server).origin : scriptOrigin;
  if (!server) throw new Error("loadbay.open needs `server`: the origin loadbay is served from.");
  return server;
}

/**
 * Open the importer: inline in `options.container`, or as a modal. An importer booted
 * ahead by preload(options) for the same server, key, template and locale is shown at
 * once instead of starting a new one.
 * @param {OpenOptions} options
 * @returns {Importer}
 */
export function open(options) {
  checkOptions(options);
  if (warm && !options.container && warm.key === keyOf(options)) {
    var adopted = warm;
    warm = null;
    adopted.adopt(options);
    return adopted.importer;
  }
  for (var i = 0; i < kept.length; i++) {
    if (kept[i].key === keyOf(options) && kept[i].container === (options.container || null) && kept[i].usable()) {
      var again = kept.splice(i, 1)[0];
      again.adopt(options);
      return again.importer;
    }
  }
  return start(options, false).importer;
}

/** @param {OpenOptions} options */
function checkOptions(options) {
  if (!options || !options.publishableKey || !options.template) {
    throw new Error("loadbay.open needs publishableKey and template.");
  }
}

/** @param {OpenOptions} options */
function keyOf(options) {
  return [serverOf(options), options.publishableKey, options.template, options.locale || ""].join(" ");
}

/**
 * @typedef {object} Started
 * @property {string} key
 * @property {HTMLElement | null} container
 * @property {Importer} importer
 * @property {(options: OpenOptions) => void} adopt show it (again) for these options
 * @property {() => boolean} usable still in the page, its engine booted
 */

/**
 * @param {OpenOptions} options
 * @param {boolean} hidden a modal kept hidden (booting) until open() adopts it
 * @returns {Started}
 */
function start(options, hidden) {
  var current = options;
  var booted = false;
  var server = serverOf(options);
  // Opening loads everything the preload would have: it is no longer needed.
  preloaded = true;
  var preloading = document.querySelector('iframe[data-loadbay="preload"]');
  if (preloading) preloading.remove();
  var query = new URLSearchParams({
    key: options.publishableKey,
    template: options.template,
    origin: window.location.origin,
  });
  if (options.locale) query.set("locale", options.locale);
  var iframe = document.createElement("iframe");
  iframe.src = server + "/importer?" + query.toString();
  iframe.title = "Data importer";
  iframe.style.cssText = "width:100%;height:100%;border:0;display:block";
  iframe.setAttribute("allow", "");

  var overlay = /** @type {HTMLElement | null} */ (null);
  if (options.container) {
    options.container.appendChild(iframe);
  } else {
    overlay = modal(iframe, function () {
      finish("cancel");
    });
    if (hidden) overlay.style.display = "none";
  }

  var finished = false;
  var lastStep = "";
  /** @param {"cancel" | "complete"} how */
  function finish(how) {
    if (finished) return;
    finished = true;
    window.removeEventListener("message", onMessage);
    if (how === "cancel") {
      var onCancel = current.onCancel;
      if (!keep()) {
        if (overlay) overlay.remove();
        else iframe.remove();
      }
      call(onCancel);
    }
  }
  // Closed, the importer is kept hidden with its booted engine (its page goes back to the
  // file picker and drops the file) unless it was sending rows: closing it then stops the
  // upload, which a later open resumes.
  function keep() {
    if (!booted || lastStep === "submitting" || !iframe.isConnected || kept.length >= KEPT_MAX) return false;
    if (iframe.contentWindow) iframe.contentWindow.postMessage(message("close"), server);
    if (overlay) overlay.style.display = "none";
    else iframe.style.display = "none";
    kept.push(started);
    return true;
  }

  var from = { origin: server, source: /** @type {unknown} */ (null) };
  /** @param {MessageEvent} event */
  function onMessage(event) {
    from.source = iframe.contentWindow;
    var data = accept(event, from, "host");
    if (!data) return;
    var reply = /** @param {Record<string, unknown>} m */ function (m) {
      if (iframe.contentWindow) iframe.contentWindow.postMessage(m, server);
    };
    if (data.type === "ready") {
      sendInit();
      call(current.onStep, "ready");
    } else if (data.type === "step") {
      if (data.step === "engine-ready") booted = true;
      else lastStep = /** @type {string} */ (data.step);
      call(current.onStep, data.step);
    } else if (data.type === "data") {
      var importId = /** @type {string} */ (data.importId);
      var handed = {
        importId: importId,
        rows: /** @type {Record<string, unknown>[]} */ (data.rows),
        total: /** @type {number} */ (data.total),
      };
      // Acknowledged once onData returns (or its promise resolves): only then is the
      // import marked delivered. A callback that throws leaves it undelivered.
      Promise.resolve()
        .then(function () {
          return typeof current.onData === "function" ? current.onData(handed) : undefined;
        })
        .then(
          function () {
            reply(message("ack", { importId: importId }));
          },
          function (error) {
            call(current.onError, { message: "onData failed: " + String(error && error.message ? error.message : error) });
          },
        );
    } else if (data.type === "complete") {
      call(current.onComplete, { importId: data.importId, rows: data.rows, status: data.status });
    } else if (data.type === "cancel") {
      finish("cancel");
    } else if (data.type === "error") {
      call(current.onError, { message: data.message });
    } else if (data.type === "resume") {
      reply(message("resumed", { request: data.request, record: keepResume(server, data) }));
    }
  }
  function sendInit() {
    var message0 = message("init", {
      theme: cleanTheme(current.theme),
      text: cleanText(current.text),
      identity: String(current.user || current.identity || ""),
    });
    if (iframe.contentWindow) iframe.contentWindow.postMessage(message0, server);
  }
  window.addEventListener("message", onMessage);
  var importer = {
    iframe: iframe,
    close: function () {
      if (finished) {
        var at = kept.indexOf(started);
        if (at >= 0) kept.splice(at, 1);
        if (overlay) overlay.remove();
        else iframe.remove();
        return;
      }
      finish("cancel");
    },
  };
  /** @type {Started} */
  var started = {
    key: keyOf(options),
    container: options.container || null,
    importer: importer,
    adopt: function (options) {
      current = options;
      var reopened = finished;
      if (reopened) {
        finished = false;
        window.addEventListener("message", onMessage);
        iframe.style.display = "block";
      }
      sendInit(); // the page's own theme, wording and identity, if they changed
      if (overlay) {
        overlay.style.display = "flex";
        var close = overlay.querySelector('[data-loadbay="close"]');
        if (close) /** @type {HTMLElement} */ (close).focus();
      }
      if (reopened) {
        // What a new importer would have told: loaded, booted, at the file picker.
        call(current.onStep, "ready");
        call(current.onStep, "engine-ready");
        call(current.onStep, "start");
        lastStep = "start";
      } else if (booted) call(current.onStep, "engine-ready");
    },
    usable: function () {
      return booted && iframe.isConnected;
    },
  };
  return started;
}


/**
 * The importer's resume record, kept here when the browser refuses the importer's frame its
 * own IndexedDB (src/resume.js, `keeper`): in this page's localStorage, under a key of the
 * loadbay origin that framed it, so no other origin's importer reads it. The record holds
 * the import's id and token, the mapping, the edits and a fingerprint of the file, never its
 * cells. Answers the record for "load", else null.
 * @param {string} server
 * @param {Record<string, unknown>} request
 * @returns {Record<string, unknown> | null}
 */
function keepResume(server, request) {
  var name = "loadbay:resume:" + server + ":" + String(request.key);
  try {
    if (request.action === "save") localStorage.setItem(name, JSON.stringify(request.record));
    else if (request.action === "delete") localStorage.removeItem(name);
    else {
      var kept = localStorage.getItem(name);
      var record = kept ? JSON.parse(kept) : null;
      return record && typeof record === "object" && !Array.isArray(record) ? record : null;
    }
    // eslint-disable-next-line no-unused-vars -- ES2017 has no catch without a binding
  } catch (error) {
    // No storage here either (a private window, a full quota): nothing is kept.
  }
  return null;
}

/**
 * A client's callback; what it throws is reported, not let through into the protocol.
 * @param {Function | undefined} fn
 * @param {unknown} [arg]
 */
function call(fn, arg) {
  if (typeof fn !== "function") return;
  try {
    fn(arg);
  } catch (error) {
    setTimeout(function () {
      throw error;
    });
  }
}

/**
 * The importer in a dialog over the page, with a close button (cancel at any step).
 * @param {HTMLIFrameElement} iframe
 * @param {() => void} onClose
 */
function modal(iframe, onClose) {
  var overlay = document.createElement("div");
  overlay.setAttribute("data-loadbay", "modal");
  overlay.setAttribute("role", "dialog");
  overlay.setAttribute("aria-modal", "true");
  overlay.setAttribute("aria-label", "Data importer");
  overlay.style.cssText =
    "position:fixed;inset:0;z-index:2147483000;background:rgba(0,0,0,.45);display:flex;align-items:center;justify-content:center";
  var box = document.createElement("div");
  box.style.cssText = "position:relative;width:min(72rem,96vw);height:min(46rem,92vh);background:#fff;border-radius:8px;overflow:hidden";
  var close = document.createElement("button");
  close.type = "button";
  close.textContent = "\u00d7";
  close.setAttribute("aria-label", "Close the importer");
  close.setAttribute("data-loadbay", "close");
  close.style.cssText = "position:absolute;top:4px;right:8px;z-index:1;font-size:1.5rem;background:none;border:0;cursor:pointer";
  close.addEventListener("click", onClose);
  overlay.addEventListener("keydown", function (event) {
    if (event.key === "Escape") onClose();
  });
  box.appendChild(close);
  box.appendChild(iframe);
  overlay.appendChild(box);
  document.body.appendChild(overlay);
  close.focus();
  return overlay;
}

/**
 * Warm start. With a server origin: fetch the importer's runtime (Pyodide, wheels, scripts:
 * immutable URLs, cached for a year) into the HTTP cache while the page is idle (embed.js
 * does this when it loads). With open()'s options: also boot an importer, hidden, that the
 * next open() with the same server, key, template and locale shows at once, ready.
 * @param {string | OpenOptions} target
 */
export function preload(target) {
  if (typeof target === "object" && target) {
    checkOptions(target);
    if (!warm) warm = start(target, true);
    return;
  }
  var server = target;
  if (!server || preloaded) return;
  preloaded = true;
  var iframe = document.createElement("iframe");
  iframe.setAttribute("data-loadbay", "preload");
  iframe.setAttribute("aria-hidden", "true");
  iframe.tabIndex = -1;
  iframe.style.cssText = "position:absolute;width:0;height:0;border:0;visibility:hidden";
  iframe.src = server + "/importer/preload";
  (document.body || document.documentElement).appendChild(iframe);
}

/** Attributes of <loadbay-importer>: the options that are strings. */
var ATTRIBUTES = { "publishable-key": "publishableKey", template: "template", server: "server", locale: "locale", user: "user" };

function defineElement() {
  if (typeof customElements === "undefined" || customElements.get("loadbay-importer")) return;
  class LoadbayImporter extends HTMLElement {
    connectedCallback() {
      /** @type {Record<string, unknown>} */
      var options = { container: this };
      for (var name in ATTRIBUTES) {
        var value = this.getAttribute(name);
        if (value) options[/** @type {Record<string, string>} */ (ATTRIBUTES)[name]] = value;
      }
      var element = this;
      /** @param {string} type */
      var emit = function (type) {
        return function (/** @type {unknown} */ detail) {
          element.dispatchEvent(new CustomEvent("loadbay-" + type, { detail: detail, bubbles: true }));
        };
      };
      options.onStep = emit("step");
      options.onData = emit("data");
      options.onComplete = emit("complete");
      options.onCancel = emit("cancel");
      options.onError = emit("error");
      var theme = this.getAttribute("theme");
      if (theme) options.theme = JSON.parse(theme);
      /** @type {Importer | null} */
      this.importer = open(/** @type {OpenOptions} */ (/** @type {unknown} */ (options)));
    }
    disconnectedCallback() {
      var importer = /** @type {Importer | null | undefined} */ (this.importer);
      if (importer) importer.close();
      this.importer = null;
    }
  }
  customElements.define("loadbay-importer", LoadbayImporter);
}

defineElement();
/** @type {any} */ (window).loadbay = { open: open, preload: preload, version: 1 };
/** @type {any} */ (window).Loadbay = /** @type {any} */ (window).loadbay;
if (script && script.getAttribute("data-preload") !== "false" && scriptOrigin) {
  if (document.body) preload(scriptOrigin);
  else document.addEventListener("DOMContentLoaded", function () {
    preload(scriptOrigin);
  });
}
