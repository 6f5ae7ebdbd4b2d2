// loadbay embed SDK: <script src=".../embed.js"></script> then Loadbay.open({...}).
// The importer runs in an iframe on loadbay's origin; results come back by postMessage,
// accepted only from that iframe and that origin, and only in the expected shape.
(function () {
  "use strict";

  /**
   * @typedef {object} OpenOptions
   * @property {string} server the loadbay origin the importer is served from
   * @property {string} publishableKey
   * @property {string} template a template id
   * @property {HTMLElement} [container] where the iframe goes (default: the page's body)
   * @property {(result: {importId: string, rows: number, status: string}) => void} [onComplete]
   */

  /**
   * @param {OpenOptions} options
   * @returns {{iframe: HTMLIFrameElement, close: () => void}}
   */
  function open(options) {
    if (!options || !options.server || !options.publishableKey || !options.template) {
      throw new Error("Loadbay.open needs server, publishableKey and template.");
    }
    var server = new URL(options.server).origin;
    var container = options.container || document.body;
    var iframe = document.createElement("iframe");
    var query = new URLSearchParams({
      key: options.publishableKey,
      template: options.template,
      origin: window.location.origin,
    });
    iframe.src = server + "/importer?" + query.toString();
    iframe.title = "Data importer";
    iframe.style.cssText = "width:100%;height:100%;border:0";
    iframe.setAttribute("allow", "");
    container.appendChild(iframe);

    /** @param {MessageEvent} event */
    function onMessage(event) {
      if (event.origin !== server || event.source !== iframe.contentWindow) return;
      var data = event.data;
      if (!data || data.source !== "loadbay" || typeof data.type !== "string") return;
      if (data.type === "loadbay:complete" && typeof data.importId === "string") {
        if (typeof options.onComplete === "function") {
          options.onComplete({ importId: data.importId, rows: data.rows, status: data.status });
        }
      }
    }
    window.addEventListener("message", onMessage);
    return {
      iframe: iframe,
      close: function () {
        window.removeEventListener("message", onMessage);
        iframe.remove();
      },
    };
  }

  /** @type {any} */ (window).Loadbay = { open: open };
})();
