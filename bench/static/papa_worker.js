// Bench worker, baseline side: what a JavaScript importer does. PapaParse streams the
// picked File in chunks; each row is checked against the same Table Schema template with
// plain JS (the rules below mirror pipeline/validation.py for the values the bench
// generates). Classic worker: PapaParse is a UMD script.
/* global Papa */
importScripts("/vendor/papaparse.min.js");

function normalise(label) {
  return label
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, "");
}

const DAYS = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
function validDate(y, m, d) {
  if (m < 1 || m > 12 || d < 1 || d > DAYS[m - 1]) return false;
  if (m === 2 && d === 29) return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
  return true;
}
const INT = /^[+-]?\d+$/;
const NUM = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATETIME =
  /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(:(\d{2})(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/;
const EMAIL = /^[^@\s]+@[^@\s]+\.[^@\s]+$/;

// One function per field: (cell) -> number of rule failures (0 = valid). Empty cells
// fail only `required`; a cell that fails its type is not checked further.
function compileField(field) {
  const c = field.constraints || {};
  const required = c.required === true;
  const type = field.type || "string";
  const checks = [];
  let parse = (v) => v;
  if (type === "integer") {
    parse = (v) => (INT.test(v) ? Number(v) : undefined);
  } else if (type === "number") {
    parse = (v) => (NUM.test(v) ? Number(v) : undefined);
  } else if (type === "date") {
    parse = (v) => {
      const m = DATE.exec(v);
      return m && validDate(+m[1], +m[2], +m[3]) ? v : undefined;
    };
  } else if (type === "datetime") {
    parse = (v) => {
      const m = DATETIME.exec(v);
      if (!m || !validDate(+m[1], +m[2], +m[3])) return undefined;
      return +m[4] < 24 && +m[5] < 60 && (m[7] === undefined || +m[7] < 60) ? v : undefined;
    };
  } else if (type === "boolean") {
    const truth = new Set([
      ...(field.trueValues || ["true", "True", "TRUE", "1"]),
      ...(field.falseValues || ["false", "False", "FALSE", "0"]),
    ]);
    parse = (v) => (truth.has(v) ? v : undefined);
  }
  if (c.enum) {
    const allowed = new Set(c.enum.map(String));
    checks.push((v) => allowed.has(v));
  }
  if (c.minimum !== undefined) checks.push((v, x) => x >= c.minimum);
  if (c.maximum !== undefined) checks.push((v, x) => x <= c.maximum);
  if (c.minLength !== undefined) checks.push((v) => [...v].length >= c.minLength);
  if (c.maxLength !== undefined) checks.push((v) => [...v].length <= c.maxLength);
  if (c.pattern !== undefined) {
    const re = new RegExp(`^(?:${c.pattern})$`, "u");
    checks.push((v) => re.test(v));
  }
  if (c.unique) {
    const seen = new Set();
    checks.push((v) => (seen.has(v) ? false : (seen.add(v), true)));
  }
  if (field.format === "email") checks.push((v) => EMAIL.test(v));
  return (v) => {
    if (v === undefined || v === "") return required ? 1 : 0;
    const x = parse(v);
    if (x === undefined) return 1;
    let failed = 0;
    for (const check of checks) if (!check(v, x)) failed++;
    return failed;
  };
}

function run(file, templateJson) {
  const template = JSON.parse(templateJson);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    let header = null;
    let columns = null; // [columnIndex, check] per mapped field
    let rows = 0;
    let errors = 0;
    let invalid = 0;
    Papa.parse(file, {
      header: false,
      skipEmptyLines: true,
      chunk(results) {
        let data = results.data;
        if (header === null) {
          header = data[0].map((h) => normalise(String(h).trim()));
          columns = [];
          for (const field of template.fields) {
            const labels = [field.name, field.title || "", ...((field["x-loadbay"] || {}).synonyms || [])];
            const index = labels.map((l) => header.indexOf(normalise(l))).find((i) => i >= 0);
            if (index !== undefined) columns.push([index, compileField(field)]);
          }
          data = data.slice(1);
        }
        for (let r = 0; r < data.length; r++) {
          const row = data[r];
          for (let k = 0; k < columns.length; k++) {
            const failed = columns[k][1](row[columns[k][0]]);
            if (failed) {
              errors += failed;
              invalid++;
            }
          }
        }
        rows += data.length;
      },
      complete() {
        resolve({
          total_ms: performance.now() - started,
          rows,
          cols: header ? header.length : 0,
          mapped: columns ? columns.length : 0,
          errors,
          invalid_cells: invalid,
        });
      },
      error(err) {
        reject(new Error(String(err && err.message ? err.message : err)));
      },
    });
  });
}

self.onmessage = async (event) => {
  const { id, type, payload } = event.data;
  try {
    if (type !== "run") throw new Error(`unknown message ${type}`);
    const value = await run(payload.file, payload.template);
    self.postMessage({ id, ok: true, value });
  } catch (error) {
    self.postMessage({ id, ok: false, error: String((error && error.stack) || error) });
  }
};
