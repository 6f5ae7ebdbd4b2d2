// The importer page's entry module: thin DOM code. Parsing, matching and validation live
// in Python (`pipeline`) inside the worker; the screens under src/ui/ render and forward.
import { chooseLanguage, useLanguage } from "./src/i18n/index.js";
import { showStart } from "./src/ui/start.js";
import { Engine } from "./src/worker.js";

/** @typedef {import("./src/types.js").PageConfig} PageConfig */

const configElement = /** @type {HTMLElement} */ (document.getElementById("loadbay-config"));
/** @type {PageConfig} */
const config = JSON.parse(configElement.textContent || "{}");
// The language: the SDK's `locale` option (embed.js puts it in the page's ?locale=), else the
// browser's preferences; English when the importer speaks none of them.
useLanguage(chooseLanguage([new URLSearchParams(window.location.search).get("locale"), ...navigator.languages]));
const engine = new Engine(new Worker(config.worker, { type: "module" }));
const absolute = (/** @type {string} */ path) => new URL(path, window.location.href).href;

showStart({
  config,
  engine,
  root: /** @type {HTMLElement} */ (document.getElementById("app")),
  booted: engine.ask("boot", { pyodide: absolute(config.pyodide), lock: absolute(config.lock), packages: config.packages }),
  notify: (message) => window.parent.postMessage({ source: "loadbay", ...message }, config.parentOrigin),
});
