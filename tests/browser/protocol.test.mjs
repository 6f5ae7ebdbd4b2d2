// The SDK's postMessage protocol (browser/src/protocol.js), as both sides use it.
import assert from "node:assert/strict";
import { test } from "node:test";

import { accept, cleanText, cleanTheme, message, PROTOCOL, STEPS, VERSION } from "../../browser/src/protocol.js";

const importer = { name: "importer window" };
const from = { origin: "https://import.example", source: importer };
const event = (data, overrides = {}) => ({ data, origin: from.origin, source: importer, ...overrides });

test("a message carries the protocol, its version and its type", () => {
  assert.deepEqual(message("ack", { importId: "imp_1" }), { protocol: PROTOCOL, version: VERSION, type: "ack", importId: "imp_1" });
});

test("the host accepts the importer's messages in their shape, from that window and origin only", () => {
  const complete = message("complete", { importId: "imp_1", rows: 3, status: "delivered" });
  assert.deepEqual(accept(event(complete), from, "host"), complete);
  assert.equal(accept(event(complete, { origin: "https://evil.example" }), from, "host"), null);
  assert.equal(accept(event(complete, { source: { name: "another window" } }), from, "host"), null);
  assert.equal(accept(event(complete), { origin: from.origin, source: null }, "host"), null);
  assert.equal(accept(event({ ...complete, rows: "3" }), from, "host"), null);
  assert.equal(accept(event({ ...complete, version: 2 }), from, "host"), null);
  assert.equal(accept(event({ ...complete, protocol: "other" }), from, "host"), null);
  assert.equal(accept(event(message("data", { importId: "imp_1", rows: "x", total: 1 })), from, "host"), null);
  assert.equal(accept(event("loadbay:complete"), from, "host"), null);
});

test("each side accepts only the types sent to it", () => {
  const ack = message("ack", { importId: "imp_1" });
  assert.equal(accept(event(ack), from, "host"), null);
  assert.deepEqual(accept(event(ack), from, "importer"), ack);
  assert.equal(accept(event(message("complete", { importId: "i", rows: 1, status: "x" })), from, "importer"), null);
  assert.equal(accept(event(message("toString")), from, "importer"), null);
  assert.equal(accept(event(message("init", { theme: {}, text: {} })), from, "importer"), null);
});

test("theme values that are not what their key takes are dropped", () => {
  assert.deepEqual(
    cleanTheme({
      primary: "#0b6e4f",
      background: "rgb(1, 2, 3)",
      text: "red; background: url(https://evil.example)",
      font: "Georgia, 'Times New Roman', serif",
      radius: "10px",
      error: "expression(alert(1))",
      logo: "https://evil.example/logo.png",
      unknown: "#fff",
    }),
    { primary: "#0b6e4f", background: "rgb(1, 2, 3)", font: "Georgia, 'Times New Roman', serif", radius: "10px" },
  );
  assert.deepEqual(cleanTheme({ logo: "data:image/png;base64,iVBORw0KGgo=" }), { logo: "data:image/png;base64,iVBORw0KGgo=" });
  assert.deepEqual(cleanTheme("nope"), {});
});

test("text overrides keep strings under message-key names only", () => {
  assert.deepEqual(cleanText({ "page.title": "Import {name}", "bad key!": "x", "upload.start": 3, long: "x".repeat(501) }), {
    "page.title": "Import {name}",
  });
});

test("a step is one of the documented names, in the order a user passes them", () => {
  assert.deepEqual(STEPS, ["ready", "engine-ready", "start", "mapping", "review", "submitting", "done", "over-host-page-cap"]);
  for (const step of STEPS) assert.ok(accept(event(message("step", { step })), from, "host"));
  assert.equal(accept(event(message("step", { step: "elsewhere" })), from, "host"), null);
});

test("the resume relay: the importer asks, the page answers, each in its shape", () => {
  const save = message("resume", { request: 1, action: "save", key: "pk_1/tpl_1", record: { importId: "imp_1" } });
  assert.deepEqual(accept(event(save), from, "host"), save);
  const load = message("resume", { request: 2, action: "load", key: "pk_1/tpl_1" });
  assert.deepEqual(accept(event(load), from, "host"), load);
  for (const bad of [
    { request: "1", action: "load", key: "k" },
    { request: 1, action: "drop", key: "k" },
    { request: 1, action: "save", key: "k" }, // save without a record
    { request: 1, action: "load", key: "k".repeat(301) },
  ]) {
    assert.equal(accept(event(message("resume", bad)), from, "host"), null);
  }
  assert.equal(accept(event(save), from, "importer"), null); // never to the importer
  const answer = message("resumed", { request: 2, record: null });
  assert.deepEqual(accept(event(answer), from, "importer"), answer);
  assert.equal(accept(event(message("resumed", { request: 2, record: [1] })), from, "importer"), null);
  assert.equal(accept(event(answer), from, "host"), null);
});
