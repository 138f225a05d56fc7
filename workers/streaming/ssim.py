"""SSIM of two luma pictures: how the project states image quality (issue 12).

Used by the encoder's quality test and the viewer benchmark, so a test and a benchmark figure
mean the same thing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]


def _gauss(img: F64, sigma: float = 1.5, radius: int = 5) -> F64:
    k = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma * sigma))
    k /= k.sum()
    h, w = img.shape
    n = 2 * radius + 1
    rows = sum(k[i] * img[:, i : w - n + 1 + i] for i in range(n))
    return sum(k[i] * rows[i : h - n + 1 + i, :] for i in range(n))  # type: ignore[no-any-return]


def ssim(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Mean SSIM of two luma images (Wang et al. 2004: 11x11 Gaussian window, sigma 1.5)."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _gauss(x), _gauss(y)
    vx = _gauss(x * x) - mx * mx
    vy = _gauss(y * y) - my * my
    cxy = _gauss(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())
