// The page takes what is required and what a field is called from the server and the engine.
import assert from "node:assert/strict";
import { test } from "node:test";

import { fieldsFor, labelOf, openOptions, unmappedRequired } from "../../browser/src/fields.js";

// A primaryKey field the template does not mark required: the server's fields say it is.
const config = {
  template: { fields: [{ name: "sku" }, { name: "name", title: "Name" }], primaryKey: ["sku"] },
  fields: [
    { name: "sku", label: "Product code", required: true, description: null },
    { name: "name", label: "Name", required: false, description: null },
  ],
  maxFileBytes: 1024,
};

test("required comes from the fields list, never from the template's constraints", () => {
  assert.deepEqual(
    unmappedRequired(fieldsFor(config), { name: 0 }).map((f) => f.name),
    ["sku"],
  );
  assert.deepEqual(unmappedRequired(fieldsFor(config), { sku: 1 }), []);
});

test("the engine's fields for the opened file win over the page's", () => {
  const described = { fields: [{ name: "sku", label: "SKU", required: false }] };
  assert.equal(fieldsFor(config, described), described.fields);
  assert.equal(fieldsFor(config, {}), config.fields);
  assert.equal(fieldsFor(config, null), config.fields);
});

test("a label is the one the fields list gives", () => {
  assert.equal(labelOf(config.fields, "sku"), "Product code");
  assert.equal(labelOf(config.fields, "unknown"), "unknown");
});

test("open_file gets the page's size limit with the user's choices", () => {
  assert.deepEqual(openOptions({ encoding: "utf-8" }, config.maxFileBytes), { encoding: "utf-8", max_bytes: 1024 });
});
