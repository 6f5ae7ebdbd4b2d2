// The importer page's entry module: thin DOM code. Parsing, matching and validation live
// in Python (`pipeline`) inside the worker; the screens under src/ui/ render and forward.
import { applyTheme, connectHost } from "./src/host.js";
import { chooseLanguage, currentLanguage, overrideMessages, useLanguage } from "./src/i18n/index.js";
import { cleanText, cleanTheme } from "./src/protocol.js";
import { engineCount, ParallelEngine } from "./src/parallel.js";
import { answering, keeper } from "./src/resume.js";
import { showStart } from "./src/ui/start.js";
import { RestartingEngine } from "./src/worker.js";

/** @typedef {import("./src/types.js").PageConfig} PageConfig */

const configElement = /** @type {HTMLElement} */ (document.getElementById("loadbay-config"));
/** @type {PageConfig} */
const config = JSON.parse(configElement.textContent || "{}");
// The language: the SDK's `locale` option (embed.js puts it in the page's ?locale=), else the
// browser's preferences; English when the importer speaks none of them.
useLanguage(chooseLanguage([new URLSearchParams(window.location.search).get("locale"), ...navigator.languages]));
// The user is told when an engine that died was replaced (the screen they are on stays).
const notice = document.createElement("p");
notice.id = "engine-notice";
notice.setAttribute("role", "alert");
notice.hidden = true;
document.getElementById("app")?.before(notice);
const host = connectHost({ parentOrigin: config.parentOrigin, parent: window.parent, self: window });
// Named, so that a test or a profiler can tell the engines apart.
const spawn = (/** @type {string} */ name) => () => new Worker(config.worker, { type: "module", name });
const primary = new RestartingEngine(
  spawn("loadbay-engine"),
  (message) => {
    notice.textContent = message;
    notice.hidden = false;
  },
  answering(keeper(host.relay)), // the worker's resume records: this frame's IndexedDB, else the host page's
);
// A large CSV is read and validated by one engine per core (up to src/parallel.js's cap);
// the second engine boots with the first, while the user picks a file.
const engine = new ParallelEngine(primary, spawn("loadbay-helper"), engineCount());
const absolute = (/** @type {string} */ path) => new URL(path, window.location.href).href;
// How long the screens wait for the page's theme and wording before they draw anyway.
const INIT_WAIT_MS = 1000;

/** The template's theme and wording, then the page's own (the SDK's options) over them. */
function customise() {
  const ext = /** @type {{theme?: unknown, text?: unknown}} */ (config.template["x-loadbay"] ?? {});
  const options = host.options();
  applyTheme(document.documentElement, { ...cleanTheme(ext.theme), ...options.theme });
  overrideMessages({ ...cleanText(ext.text), ...options.text });
}

// A page may send its options again (an importer booted ahead and then opened).
host.onInit(customise);
const initialised = new Promise((resolve) => {
  host.onInit(() => resolve(undefined));
  setTimeout(resolve, window.parent === window ? 0 : INIT_WAIT_MS);
});
host.send("ready");
customise();
const { packages, build } = config;
const booted = engine.ask("boot", { pyodide: absolute(config.pyodide), lock: absolute(config.lock), packages, build });
booted.then(
  (/** @type {{boot: string, reason?: string, ms: {snapshot: number, start: number}}} */ how) => {
    // How the engine started: from this browser's snapshot of it, or afresh (and why).
    document.documentElement.dataset.engineBoot = how.boot;
    const took = `reading the snapshot ${Math.round(how.ms.snapshot)} ms, starting ${Math.round(how.ms.start)} ms`;
    console.info(`loadbay: the engine started ${how.reason ? `afresh (${how.reason})` : "from its snapshot"}; ${took}`);
    // The cell errors' messages in the page's language (pipeline.messages renders them).
    engine.call("set_language", [currentLanguage()]);
    host.send("step", { step: "engine-ready" });
  },
  (/** @type {Error} */ error) => host.send("error", { message: error.message }),
);

initialised.then(() => {
  customise();
  /** @type {import("./src/ui/shell.js").Context} */
  const ctx = {
    config,
    engine,
    root: /** @type {HTMLElement} */ (document.getElementById("app")),
    booted,
    host,
    notify: ({ type, ...fields }) => host.send(String(type).replace(/^loadbay:/, ""), fields),
  };
  showStart(ctx);
  // Closed, the page keeps this importer hidden for its next open (browser/sdk/embed.js):
  // back to the file picker, the file's screens gone and the file dropped from the engine
  // (a hidden importer holds no user's data); the engine stays booted.
  host.onClose(() => {
    ctx.step = undefined;
    showStart(ctx);
    engine.call("close_file").catch(() => {});
  });
});
