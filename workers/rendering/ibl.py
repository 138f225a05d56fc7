"""Image-based lighting, precomputed in numpy: the split-sum approximation (Karis 2013) as the
Khronos sample viewer uses it.

- :func:`specular_cube`: the environment convolved with the GGX lobe (N = V = R) for
  ``SPECULAR_LEVELS`` roughness values ``level / (SPECULAR_LEVELS - 1)``, one cube mip level
  each (the shader picks ``textureLod(cube, R, roughness * (SPECULAR_LEVELS - 1))``).
- :func:`irradiance_cube`: cosine-weighted irradiance divided by pi, so that the diffuse term
  is simply ``irradiance * c_diff`` (Lambert ``c / pi`` integrated over the hemisphere).
- :func:`brdf_lut`: the split-sum scale and bias (A, B) of the specular term over
  (NdotV, roughness), with the spec's height-correlated Smith visibility.

All of it costs well under a second for the default environment and is cached per process
(:func:`prepared_environment`), so a renderer pays it once, not per scene or per frame.
Cube faces follow OpenGL's table (major axis, s axis, t axis; row 0 of a face is t = 0).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from workers.rendering.environment import default_environment

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

SPECULAR_FACE = 64
SPECULAR_LEVELS = 5  # face sizes 64, 32, 16, 8, 4 for roughness 0, .25, .5, .75, 1
IRRADIANCE_FACE = 16
LUT_SIZE = 32
LUT_SAMPLES = 256

# OpenGL cube map faces +X, -X, +Y, -Y, +Z, -Z: (major axis, s axis, t axis).
_FACES = (
    ((1, 0, 0), (0, 0, -1), (0, -1, 0)),
    ((-1, 0, 0), (0, 0, 1), (0, -1, 0)),
    ((0, 1, 0), (1, 0, 0), (0, 0, 1)),
    ((0, -1, 0), (1, 0, 0), (0, 0, -1)),
    ((0, 0, 1), (1, 0, 0), (0, -1, 0)),
    ((0, 0, -1), (-1, 0, 0), (0, -1, 0)),
)


@dataclass(frozen=True)
class PreparedEnvironment:
    specular: list[F32]  # per level: (6, size, size, 3) linear radiance
    irradiance: F32  # (6, IRRADIANCE_FACE, IRRADIANCE_FACE, 3), already divided by pi
    lut: F32  # (LUT_SIZE rows = roughness, LUT_SIZE columns = NdotV, 2)


def cube_directions(size: int) -> F64:
    """Unit directions (6, size, size, 3) of the texel centres of each face."""
    c = (np.arange(size, dtype=np.float64) + 0.5) / size * 2 - 1
    out = np.empty((6, size, size, 3))
    for f, (major, s_axis, t_axis) in enumerate(_FACES):
        d = (
            np.asarray(major, np.float64)[None, None, :]
            + c[None, :, None] * np.asarray(s_axis, np.float64)[None, None, :]
            + c[:, None, None] * np.asarray(t_axis, np.float64)[None, None, :]
        )
        out[f] = d / np.linalg.norm(d, axis=-1, keepdims=True)
    return out


def sample_equirect(env: F32, dirs: F64) -> F64:
    """Bilinear lookup of an equirect map (environment.py's convention) along ``dirs``."""
    h, w = env.shape[:2]
    u = np.arctan2(dirs[..., 2], dirs[..., 0]) / (2 * math.pi) + 0.5
    v = np.arcsin(np.clip(dirs[..., 1], -1, 1)) / math.pi + 0.5
    x = u * w - 0.5
    y = np.clip(v * h - 0.5, 0, h - 1)
    x0 = np.floor(x).astype(np.int64)
    y0 = np.floor(y).astype(np.int64)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    y1 = np.minimum(y0 + 1, h - 1)
    x0w, x1w = x0 % w, (x0 + 1) % w
    e = env.astype(np.float64)
    top = e[y0, x0w] * (1 - fx) + e[y0, x1w] * fx
    bottom = e[y1, x0w] * (1 - fx) + e[y1, x1w] * fx
    result: F64 = top * (1 - fy) + bottom * fy
    return result


def _downsample(env: F32, height: int) -> F32:
    """Box-filter the equirect map to ``height`` rows (an integer factor)."""
    h, w = env.shape[:2]
    k = max(h // height, 1)
    out: F32 = env[: h - h % k, : w - w % k].reshape(h // k, k, w // k, k, 3).mean(axis=(1, 3))
    return out.astype(np.float32)


def _texels(env: F32) -> tuple[F64, F64, F64]:
    """(directions (n, 3), solid angles (n,), radiance (n, 3)) of an equirect map's texels."""
    h, w = env.shape[:2]
    u = (np.arange(w) + 0.5) / w
    v = (np.arange(h) + 0.5) / h
    theta = (u - 0.5) * 2 * math.pi
    phi = (v - 0.5) * math.pi
    d = np.empty((h, w, 3))
    d[..., 0] = np.cos(phi)[:, None] * np.cos(theta)[None, :]
    d[..., 1] = np.sin(phi)[:, None]
    d[..., 2] = np.cos(phi)[:, None] * np.sin(theta)[None, :]
    solid = np.broadcast_to((2 * math.pi / w) * (math.pi / h) * np.cos(phi)[:, None], (h, w))
    return d.reshape(-1, 3), solid.reshape(-1).copy(), env.reshape(-1, 3).astype(np.float64)


def _convolve(dirs: F64, env: F32, lobe: str, roughness: float = 1.0) -> F32:
    """Each output direction's weighted mean of the environment over a lobe around it."""
    src_dirs, solid, radiance = _texels(env)
    flat = dirs.reshape(-1, 3)
    out = np.empty((flat.shape[0], 3))
    a2 = max(roughness, 1e-3) ** 4
    for start in range(0, flat.shape[0], 1024):
        cos = np.clip(flat[start : start + 1024] @ src_dirs.T, -1.0, 1.0)
        weight = np.maximum(cos, 0.0) * solid[None, :]
        if lobe == "ggx":
            # N = V = R: NdotH = cos(half the angle to L); pdf-weighted GGX as in Karis 2013.
            ndh2 = (1 + cos) / 2
            weight = weight * (a2 / (math.pi * (ndh2 * (a2 - 1) + 1) ** 2))
            out[start : start + 1024] = (weight @ radiance) / np.maximum(
                weight.sum(axis=1, keepdims=True), 1e-12
            )
        else:  # cosine: irradiance / pi
            out[start : start + 1024] = (weight @ radiance) / math.pi
    return out.reshape(dirs.shape).astype(np.float32)


def specular_cube(env: F32) -> list[F32]:
    levels: list[F32] = []
    for level in range(SPECULAR_LEVELS):
        size = SPECULAR_FACE >> level
        dirs = cube_directions(size)
        if level == 0:  # roughness 0: a mirror, the map itself
            levels.append(sample_equirect(env, dirs).astype(np.float32))
            continue
        roughness = level / (SPECULAR_LEVELS - 1)
        # Narrow lobes need a finer source; wide ones are fine (and fast) on a coarse one.
        src = _downsample(env, 64 if level == 1 else 32)
        levels.append(_convolve(dirs, src, "ggx", roughness))
    return levels


def irradiance_cube(env: F32) -> F32:
    return _convolve(cube_directions(IRRADIANCE_FACE), _downsample(env, 32), "cosine")


def _radical_inverse(n: int) -> F64:
    i: npt.NDArray[Any] = np.arange(n, dtype=np.uint32)
    i = ((i << 16) | (i >> 16)) & 0xFFFFFFFF
    i = ((i & 0x55555555) << 1) | ((i & 0xAAAAAAAA) >> 1)
    i = ((i & 0x33333333) << 2) | ((i & 0xCCCCCCCC) >> 2)
    i = ((i & 0x0F0F0F0F) << 4) | ((i & 0xF0F0F0F0) >> 4)
    i = ((i & 0x00FF00FF) << 8) | ((i & 0xFF00FF00) >> 8)
    result: F64 = i.astype(np.float64) / 2**32
    return result


@functools.lru_cache(maxsize=1)
def brdf_lut(size: int = LUT_SIZE, samples: int = LUT_SAMPLES) -> F32:
    """(roughness rows, NdotV columns, 2): the split-sum (A, B), F0 * A + B."""
    ndv = (np.arange(size) + 0.5) / size
    rough = (np.arange(size) + 0.5) / size
    xi1 = np.arange(samples) / samples
    xi2 = _radical_inverse(samples)
    a = (rough**2)[:, None, None]  # (r, 1, 1)
    a2 = a * a
    nv = ndv[None, :, None]  # (1, v, 1)
    vx, vz = np.sqrt(1 - nv * nv), nv
    cos_t = np.sqrt((1 - xi2) / (1 + (a2 - 1) * xi2))  # (r, 1, s)
    sin_t = np.sqrt(1 - cos_t * cos_t)
    phi = 2 * math.pi * xi1
    hx, hz = sin_t * np.cos(phi), cos_t
    vdh = vx * hx + vz * hz  # (r, v, s)
    lz = 2 * vdh * hz - vz
    ndl = np.clip(lz, 0, 1)
    ndh = np.clip(hz, 0, 1)
    vdh = np.clip(vdh, 0, 1)
    denom = ndl * np.sqrt(nv * nv * (1 - a2) + a2) + nv * np.sqrt(ndl * ndl * (1 - a2) + a2)
    vis = np.where(denom > 0, 0.5 / np.maximum(denom, 1e-12), 0.0)
    g = np.where(ndl > 0, vis * 4 * ndl * vdh / np.maximum(ndh, 1e-12), 0.0)
    fc = (1 - vdh) ** 5
    lut = np.stack([((1 - fc) * g).mean(axis=2), (fc * g).mean(axis=2)], axis=-1)
    return np.ascontiguousarray(lut, dtype=np.float32)


@functools.lru_cache(maxsize=2)
def prepared_environment(height: int | None = None) -> PreparedEnvironment:
    """The default environment, filtered (cached: computed once per process)."""
    env = default_environment() if height is None else default_environment(height)
    return PreparedEnvironment(
        specular=specular_cube(env), irradiance=irradiance_cube(env), lut=brdf_lut()
    )
