"""Levels of detail for scene chunks, simplified once at load time with meshoptimizer.

A dense object far from the eye costs the rasteriser its triangles whatever its size on screen:
on a software renderer (llvmpipe) the demo room's 25k-triangle objects cover a few thousand
pixels each, so most of the vertex work is wasted. Each chunk with enough triangles gets coarser
index ranges (sharing the chunk's vertices, so no new vertex data), with the geometric error
meshoptimizer reports in metres. The renderer picks, per eye and frame, the coarsest level whose
error projects to less than a pixel budget, so the picture does not change visibly.

meshoptimizer's ``simplify`` keeps the original vertices (attribute seams and UVs intact) and
only drops triangles, which is what lets all levels share one vertex buffer.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from workers.rendering.scene_data import Chunk, SceneData

log = logging.getLogger(__name__)

MIN_TRIANGLES = 1024  # below this a chunk is cheap enough as it is
RATIOS = (0.25, 0.0625, 0.015625)  # target triangle fractions of the full mesh, per level
MIN_GAIN = 0.8  # a level must drop at least 20% of the previous level's triangles


def _simplify(
    local_idx: npt.NDArray[np.uint32], positions: npt.NDArray[np.float32], target: int
) -> tuple[npt.NDArray[np.uint32], float]:
    import meshoptimizer  # lazy: a compiled extension, only needed when loading scenes

    out = np.empty_like(local_idx)
    err = np.zeros(1, dtype=np.float32)
    # No error cap: the renderer decides per frame which error is acceptable.
    count = meshoptimizer.simplify(
        out,
        local_idx,
        positions,
        target_index_count=target,
        target_error=1.0,
        result_error=err,
    )
    scale = float(meshoptimizer.simplify_scale(positions))
    return out[:count].copy(), float(err[0]) * scale


def add_lods(scene: SceneData, *, min_triangles: int = MIN_TRIANGLES) -> SceneData:
    """A copy of ``scene`` whose dense chunks carry simplified index ranges.

    Without meshoptimizer installed the scene is returned as it is (full detail always).
    """
    try:
        import meshoptimizer  # noqa: F401
    except ImportError:  # pragma: no cover - it is in requirements.txt
        log.warning("meshoptimizer is not installed: no levels of detail")
        return scene
    extra: list[npt.NDArray[np.uint32]] = []
    next_first = int(scene.indices.shape[0])
    chunks: list[Chunk] = []
    positions_all = scene.vertices[:, 0:3]
    for chunk in scene.chunks:
        first, count, _ = chunk.lods[0]
        if count // 3 < min_triangles or scene.materials[chunk.material].alpha_mode == "BLEND":
            chunks.append(chunk)
            continue
        idx = scene.indices[first : first + count]
        used, inverse = np.unique(idx, return_inverse=True)
        local: npt.NDArray[np.uint32] = np.asarray(inverse, dtype=np.uint32)
        positions = np.ascontiguousarray(positions_all[used], dtype=np.float32)
        lods = list(chunk.lods)
        previous = count
        for ratio in RATIOS:
            target = max(int(count * ratio) // 3 * 3, 3)
            simplified, error = _simplify(local, positions, target)
            if simplified.size == 0 or simplified.size > previous * MIN_GAIN:
                continue
            extra.append(used[simplified].astype(np.uint32))
            lods.append((next_first, int(simplified.size), error))
            next_first += int(simplified.size)
            previous = int(simplified.size)
        chunks.append(replace(chunk, lods=lods))
    if not extra:
        return replace(scene, chunks=chunks)
    indices = np.ascontiguousarray(np.concatenate([scene.indices, *extra]), dtype=np.uint32)
    log.info(
        "levels of detail: %d chunks simplified, %d extra indices",
        sum(len(c.lods) > 1 for c in chunks),
        indices.shape[0] - scene.indices.shape[0],
    )
    return replace(scene, indices=indices, chunks=chunks)
