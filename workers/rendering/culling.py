"""Per-eye frustum culling and level-of-detail selection over a scene's chunks (pure numpy).

Each eye draws only the chunks whose bounding sphere touches its frustum, each at the coarsest
level of detail whose geometric error projects to at most ``max_error_px`` pixels. Adjacent
index ranges of one material are merged, so a scene that is all visible at full detail still
costs one draw call per material.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from workers.rendering.scene_data import SceneData

F64 = npt.NDArray[np.float64]
Range = tuple[int, int]  # (first index, index count)


def frustum_planes(view_proj: F64) -> F64:
    """The six planes (a, b, c, d), normalised, inside where a*x + b*y + c*z + d >= 0, of a
    view-projection matrix in the math convention (clip = M @ world)."""
    m = np.asarray(view_proj, dtype=np.float64)
    rows = [m[3] + m[0], m[3] - m[0], m[3] + m[1], m[3] - m[1], m[3] + m[2], m[3] - m[2]]
    planes = np.stack(rows)
    norms = np.linalg.norm(planes[:, :3], axis=1, keepdims=True)
    result: F64 = planes / np.maximum(norms, 1e-12)
    return result


class ChunkTable:
    """The scene's chunks as arrays, for fast per-eye selection."""

    def __init__(self, scene: SceneData, *, max_error_px: float = 0.5) -> None:
        self.max_error_px = max_error_px
        chunks = scene.chunks
        n = len(chunks)
        levels = max((len(c.lods) for c in chunks), default=1)
        self.materials = np.array([c.material for c in chunks], dtype=np.int64)
        # Alpha-blended chunks are drawn one by one, back to front (they come last).
        self.blend = np.array(
            [scene.materials[c.material].alpha_mode == "BLEND" for c in chunks], dtype=bool
        )
        self.centers = np.array([c.center for c in chunks], dtype=np.float64).reshape(n, 3)
        self.radii = np.array([c.radius for c in chunks], dtype=np.float64)
        self.firsts = np.zeros((n, levels), dtype=np.int64)
        self.counts = np.zeros((n, levels), dtype=np.int64)
        self.errors = np.full((n, levels), np.inf)  # missing levels are never chosen
        for i, chunk in enumerate(chunks):
            for level, (first, count, error) in enumerate(chunk.lods):
                self.firsts[i, level], self.counts[i, level] = first, count
                self.errors[i, level] = error
        self.triangles_drawn = 0  # of the latest selection, for stats and tests

    def select(
        self, view_proj: F64, eye: F64, px_per_radian: float
    ) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.intp]]:
        """(visible mask, chosen level per chunk). ``px_per_radian`` is the projection's
        vertical focal length in pixels: ``proj[1, 1] * viewport_height / 2``."""
        planes = frustum_planes(view_proj)
        dist = self.centers @ planes[:, :3].T + planes[:, 3]
        visible: npt.NDArray[np.bool_] = np.asarray((dist >= -self.radii[:, None]).all(axis=1))
        to_eye = np.linalg.norm(self.centers - np.asarray(eye, dtype=np.float64), axis=1)
        depth = np.maximum(to_eye - self.radii, 1e-3)
        err_px = self.errors * (px_per_radian / depth)[:, None]
        ok = err_px <= self.max_error_px
        # The coarsest acceptable level: the last True in each row (level 0 is always ok).
        level: npt.NDArray[np.intp] = ok.shape[1] - 1 - np.argmax(ok[:, ::-1], axis=1)
        return visible, level

    def visible_ranges(
        self, view_proj: F64, eye: F64, px_per_radian: float
    ) -> list[tuple[int, list[Range]]]:
        """Per material in draw order, the merged index ranges to draw for this eye; blended
        chunks each on their own, sorted back to front from ``eye`` (their centres)."""
        if self.materials.size == 0:
            return []
        visible, level = self.select(view_proj, eye, px_per_radian)
        rows = np.nonzero(visible & ~self.blend)[0]
        blend_rows = np.nonzero(visible & self.blend)[0]
        if blend_rows.size:
            dist = np.linalg.norm(self.centers[blend_rows] - np.asarray(eye, np.float64), axis=1)
            rows = np.concatenate([rows, blend_rows[np.argsort(-dist, kind="stable")]])
        firsts = self.firsts[rows, level[rows]]
        counts = self.counts[rows, level[rows]]
        self.triangles_drawn = int(counts.sum()) // 3
        out: list[tuple[int, list[Range]]] = []
        for row, first, count in zip(rows.tolist(), firsts.tolist(), counts.tolist(), strict=True):
            material = int(self.materials[row])
            if not out or out[-1][0] != material or self.blend[row]:
                out.append((material, [(first, count)]))
                continue
            ranges = out[-1][1]
            last_first, last_count = ranges[-1]
            if last_first + last_count == first:
                ranges[-1] = (last_first, last_count + count)
            else:
                ranges.append((first, count))
        return out
