// The Khronos glTF-Validator (npm `gltf-validator`) over one .glb/.gltf; prints its JSON report.
//
//   node validate.mjs FILE [MAX_ISSUES]
//
// Run by apps/scenes/validation/khronos.py inside the processing sandbox, only after our own
// container checks accepted the package (so every uri is a plain relative path). Resources are
// still read defensively: relative paths under the file's directory only, regular files only.
import fs from "node:fs/promises";
import path from "node:path";
import validator from "gltf-validator";

const [file, maxIssuesArg] = process.argv.slice(2);
if (!file) {
  process.stderr.write("usage: node validate.mjs FILE [MAX_ISSUES]\n");
  process.exit(2);
}
const root = path.dirname(path.resolve(file));

async function readResource(uri) {
  const rel = decodeURIComponent(uri);
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(rel) || rel.startsWith("/") || rel.split(/[\\/]/).includes("..")) {
    throw new Error(`refused resource uri ${JSON.stringify(uri)}`);
  }
  const full = path.resolve(root, rel);
  if (!full.startsWith(root + path.sep)) throw new Error(`resource outside the package: ${uri}`);
  const st = await fs.lstat(full);
  if (!st.isFile()) throw new Error(`resource is not a regular file: ${uri}`);
  return new Uint8Array(await fs.readFile(full));
}

const data = new Uint8Array(await fs.readFile(file));
const report = await validator.validateBytes(data, {
  uri: path.basename(file),
  format: file.toLowerCase().endsWith(".glb") ? "glb" : "gltf",
  maxIssues: Number(maxIssuesArg || 200),
  externalResourceFunction: readResource,
});
process.stdout.write(JSON.stringify(report));
