// Runs a Python script in Pyodide under Node against the built assets, so conformance tests
// exercise exactly the runtime and wheels the browser gets.
//
// Usage: node pyodide_runner.mjs <assets_dir> <mount_dir> <script.py>
// stdout: the value of the script's last expression (expected to be a JSON string).
// stderr: Pyodide's stdout/stderr and any Python traceback (exit code 1).
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

function fail(message, code = 1) {
  process.stderr.write(`${message}\n`);
  process.exit(code);
}

const [assetsArg, mountArg, scriptArg] = process.argv.slice(2);
if (!assetsArg || !mountArg || !scriptArg) {
  fail("usage: node pyodide_runner.mjs <assets_dir> <mount_dir> <script.py>", 2);
}
const assetsDir = path.resolve(assetsArg);
const pyodideDir = path.join(assetsDir, "pyodide");
const manifest = JSON.parse(await readFile(path.join(assetsDir, "manifest.json"), "utf8"));
const script = await readFile(path.resolve(scriptArg), "utf8");
const lockFile = path.join(assetsDir, "wheels", "pyodide-lock.json");

// Pyodide checks the lock's sha256 only in browsers (fetch integrity); its Node loader reads
// files unchecked and falls back to the CDN for missing ones. Verify here so Node runs load
// exactly the wheels the browser would accept, and never anything from the network.
const lock = JSON.parse(await readFile(lockFile, "utf8"));
for (const name of manifest.packages) {
  const entry = lock.packages[name];
  if (!entry) fail(`package ${name} from manifest.json is not in ${lockFile}`);
  const wheel = path.join(path.dirname(lockFile), entry.file_name);
  const data = await readFile(wheel).catch(() => fail(`missing wheel ${wheel}`));
  const actual = createHash("sha256").update(data).digest("hex");
  if (actual !== entry.sha256) fail(`${wheel}: sha256 ${actual}, lock says ${entry.sha256}`);
}

const { loadPyodide } = await import(pathToFileURL(path.join(pyodideDir, "pyodide.mjs")).href);
const toStderr = (line) => process.stderr.write(`${line}\n`);
const pyodide = await loadPyodide({
  indexURL: `${pyodideDir}${path.sep}`,
  // Relative wheel file names resolve against the lock file's directory.
  lockFileURL: lockFile,
  packages: manifest.packages,
  stdout: toStderr,
  stderr: toStderr,
});

pyodide.FS.mkdirTree("/data");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: path.resolve(mountArg) }, "/data");

try {
  const result = await pyodide.runPythonAsync(script, { filename: path.resolve(scriptArg) });
  process.stdout.write(String(result ?? ""));
} catch (err) {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
