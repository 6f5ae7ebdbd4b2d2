// The boot wheels' zip reader (browser/src/wheels.js): stored and deflated entries, in the
// archive's order, directories left out; anything else is refused with what it is.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { crc32 } from "node:zlib";

import { unzip } from "../../browser/src/wheels.js";

// An OpenDocument spreadsheet is a zip: "mimetype" stored, the rest deflated.
const ODS = new URL("../conformance/vectors/file_ods/data.ods", import.meta.url);

test("unzip returns every file of a zip with its bytes, in order", async () => {
  const files = await unzip(new Uint8Array(readFileSync(ODS)));
  assert.deepEqual(
    files.map((f) => [f.path, f.bytes.length]),
    [
      ["mimetype", 46],
      ["manifest.rdf", 899],
      ["meta.xml", 792],
      ["styles.xml", 20835],
      ["content.xml", 13906],
      ["settings.xml", 4356],
      ["Thumbnails/thumbnail.png", 9406],
      ["META-INF/manifest.xml", 1068],
    ],
  );
  assert.equal(new TextDecoder().decode(files[0].bytes), "application/vnd.oasis.opendocument.spreadsheet");
  // the CRC-32s the archive lists (`unzip -v`)
  assert.equal(crc32(files[4].bytes).toString(16).padStart(8, "0"), "081bd523"); // deflated
  assert.equal(crc32(files[6].bytes).toString(16).padStart(8, "0"), "52516857"); // stored
});

test("unzip refuses what is not a zip, and a damaged directory", async () => {
  await assert.rejects(unzip(new TextEncoder().encode("name,email\n")), /not a zip archive/);
  const damaged = new Uint8Array(readFileSync(ODS));
  const view = new DataView(damaged.buffer);
  const directory = view.getUint32(damaged.length - 22 + 16, true);
  damaged[directory] ^= 0xff;
  await assert.rejects(unzip(damaged), /zip central directory damaged at entry 0/);
});
