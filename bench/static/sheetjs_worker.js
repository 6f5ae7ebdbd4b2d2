// Bench worker, spreadsheet baseline: what a JavaScript importer does with an xlsx. SheetJS
// reads the picked File's bytes, its first sheet becomes rows of cells as they were saved
// (dates as dates), and each row is checked against the same template with the PapaParse
// baseline's rule functions (compileField, normalise: loaded from papa_worker.js, so the
// rules are not written twice). Classic worker: both are UMD/classic scripts.
/* global XLSX, compileField, normalise */
importScripts("/vendor/xlsx.full.min.js", "/bench/papa_worker.js");

function cellText(value) {
  if (value === undefined || value === null) return "";
  if (value instanceof Date) {
    const iso = value.toISOString();
    return iso.endsWith("T00:00:00.000Z") ? iso.slice(0, 10) : iso.slice(0, 19);
  }
  return String(value);
}

async function runSheet(file, templateJson) {
  const template = JSON.parse(templateJson);
  const started = performance.now();
  const book = XLSX.read(await file.arrayBuffer(), { type: "array", dense: true, cellDates: true });
  const sheet = book.Sheets[book.SheetNames[0]];
  const data = XLSX.utils.sheet_to_json(sheet, { header: 1, raw: true, defval: "" });
  const parsed = performance.now();
  const header = data[0].map((h) => normalise(String(h).trim()));
  const columns = [];
  for (const field of template.fields) {
    const labels = [field.name, field.title || "", ...((field["x-loadbay"] || {}).synonyms || [])];
    const index = labels.map((l) => header.indexOf(normalise(l))).find((i) => i >= 0);
    if (index !== undefined) columns.push([index, compileField(field)]);
  }
  let errors = 0;
  let invalid = 0;
  for (let r = 1; r < data.length; r++) {
    const row = data[r];
    for (let k = 0; k < columns.length; k++) {
      const failed = columns[k][1](cellText(row[columns[k][0]]));
      if (failed) {
        errors += failed;
        invalid++;
      }
    }
  }
  return {
    total_ms: performance.now() - started,
    parse_ms: parsed - started,
    rows: data.length - 1,
    cols: header.length,
    mapped: columns.length,
    errors,
    invalid_cells: invalid,
  };
}

self.onmessage = async (event) => {
  const { id, type, payload } = event.data;
  try {
    if (type !== "run") throw new Error(`unknown message ${type}`);
    const value = await runSheet(payload.file, payload.template);
    self.postMessage({ id, ok: true, value });
  } catch (error) {
    self.postMessage({ id, ok: false, error: String((error && error.stack) || error) });
  }
};
