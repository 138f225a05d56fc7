"""Scene processing cost per MB of upload: plain GLB, Draco, meshopt, FBX (issue 15).

Makes one textured scene of about ``--triangles`` triangles, derives the compressed and converted
variants with the real tools (npm @gltf-transform/cli, assimp), then runs the processing child
(``python -m apps.scenes.processing``: the validator gate, decoding or conversion, our checks and
the thumbnail) on each, ``--repeats`` times. Reports wall time and the peak resident memory of
the largest process of the run (the Python child, node or assimp), each per MB of upload.

    .venv/bin/python benchmarks/bench_scene_processing.py --triangles 200000 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from apps.scenes.tests import formats  # noqa: E402
from workers.rendering.gltf_builder import GltfBuilder, torus  # noqa: E402


def make_scene(path: Path, triangles: int) -> None:
    b = GltfBuilder(generator="bench_scene_processing")
    # 128 px: Debian 12's assimp 5.2.5 crashes reading back its own ASCII FBX with a larger
    # embedded texture (seen here, exit -11/134), which would leave FBX unmeasured.
    mat = b.add_material(base_color_texture=formats.checker_png(128, 16))
    per = max(triangles // 8, 2)
    segments = max(int((per / 2) ** 0.5), 4)
    for k in range(8):
        pos, nrm, uv, idx = torus(0.4, 0.12, segments, segments)
        mesh = b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mat)
        b.add_node(mesh=mesh, translation=(k % 4 - 1.5, k // 4 - 0.5, 0.0))
    b.write_glb(path)


def run_child(path: Path) -> tuple[float, int, dict[str, object]]:
    out = Path(tempfile.mkdtemp(prefix="bench-out-"))
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "apps.scenes.processing", str(path), str(out)],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    report = json.loads((out / "report.json").read_text()) if proc.returncode == 0 else {}
    shutil.rmtree(out, ignore_errors=True)
    # RUSAGE_CHILDREN's ru_maxrss: the largest process among finished descendants, so far; each
    # variant runs in a fresh interpreter (see main), so it is this variant's peak.
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return elapsed, peak_kb, report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triangles", type=int, default=200_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: measure one file
    args = parser.parse_args()
    if args.one:
        times, peaks = [], []
        for _ in range(args.repeats):
            elapsed, peak, report = run_child(Path(args.one))
            if not report.get("ok"):
                print(json.dumps({"error": report.get("issues", "child failed")}))
                return 1
            times.append(elapsed)
            peaks.append(peak)
        print(json.dumps({"seconds": statistics.median(times), "peak_kb": max(peaks)}))
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench-scenes-"))
    plain = work / "plain.glb"
    make_scene(plain, args.triangles)
    variants = {"plain": plain}
    for command in ("draco", "meshopt"):
        variants[command] = work / f"{command}.glb"
        formats.gltf_transform(command, str(plain), str(variants[command]))
    variants["fbx"] = formats.assimp_export(plain, work / "scene.fbx", "fbxa")
    print(f"scene: ~{args.triangles} triangles, {args.repeats} runs per variant (median)")
    print("| upload | size MB | time s | time s/MB | peak RSS MB | peak MB per MB |")
    print("|---|---|---|---|---|---|")
    for name, path in variants.items():
        # A fresh interpreter per variant keeps RUSAGE_CHILDREN's peak to that variant.
        proc = subprocess.run(
            [sys.executable, __file__, "--one", str(path), "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            check=False,
        )
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if "error" in result:
            print(f"| {name} | failed: {result['error']} |")
            continue
        mb = path.stat().st_size / 1e6
        seconds, peak_mb = float(result["seconds"]), int(result["peak_kb"]) / 1024
        print(
            f"| {name} | {mb:.2f} | {seconds:.2f} | {seconds / mb:.2f} | {peak_mb:.0f} "
            f"| {peak_mb / mb:.0f} |"
        )
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
