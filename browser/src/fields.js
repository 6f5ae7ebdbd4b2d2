// The template's fields as the server and the engine describe them. The page asks these
// lists what is required and what a field is called; it never works it out from the template.

/** @typedef {import("./types.js").FieldInfo} FieldInfo */
/** @typedef {import("./types.js").PageConfig} PageConfig */
/** @typedef {import("./types.js").Described} Described */

/**
 * The engine's fields for an opened file when it sends them, else the server's.
 * @param {PageConfig} config
 * @param {Described | null} [described]
 * @returns {FieldInfo[]}
 */
export function fieldsFor(config, described) {
  return described?.fields ?? config.fields;
}

/**
 * @param {FieldInfo[]} fields
 * @param {string} name
 */
export function labelOf(fields, name) {
  return fields.find((f) => f.name === name)?.label ?? name;
}

/**
 * Required fields no column is mapped to.
 * @param {FieldInfo[]} fields
 * @param {Record<string, number>} mapping field name -> column index
 * @returns {FieldInfo[]}
 */
export function unmappedRequired(fields, mapping) {
  return fields.filter((f) => f.required && !Object.hasOwn(mapping, f.name));
}

/**
 * The reading options open_file gets: the user's choices and the operator's size limit, so
 * the engine refuses exactly the files the page refuses.
 * @param {import("./types.js").OpenOptions} choices
 * @param {number} maxBytes
 */
export function openOptions(choices, maxBytes) {
  return { ...choices, max_bytes: maxBytes };
}
