"""The default lighting of every scene: a neutral studio environment and the punctual lights
used when a scene brings none. Pure numpy; no GL.

This module is a contract: the fidelity benchmark (benchmarks/bench_fidelity.py) hands the
same environment array and lights to three.js to render the reference images, so the names
and meanings here are stable:

- :func:`default_environment` returns linear radiance, float32 (H, W, 3), W = 2H,
  equirectangular in three.js's ``equirectUv`` convention: a unit direction ``d`` maps to
  ``u = atan2(d.z, d.x) / (2 pi) + 0.5``, ``v = asin(d.y) / pi + 0.5``; column ``x`` holds
  ``u = (x + 0.5) / W`` and **row 0 holds v = 0 (straight down)**, so the array can be given to
  three.js as a ``DataTexture`` (flipY false) with ``EquirectangularReflectionMapping``.
- :data:`DEFAULT_LIGHTS` are glTF ``KHR_lights_punctual`` lights (intensity in lux for
  directional lights, candela for point/spot), shading as the glTF spec's appendix B:
  ``radiance = intensity * color * NdotL * BRDF`` (three.js with physically correct lights,
  its default since r155, does the same).
- :data:`ENVIRONMENT_INTENSITY` scales the environment's radiance; :data:`TONE_MAPPING` and
  :data:`EXPOSURE` name the output transform (Khronos PBR Neutral, then the sRGB curve).
- :data:`BACKGROUND_SRGB` is the clear colour behind the scene, as displayed (sRGB-encoded,
  not tone mapped): the environment lights the scene but is not drawn as a backdrop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

ENVIRONMENT_INTENSITY = 1.0
TONE_MAPPING = "khronos_pbr_neutral"
EXPOSURE = 1.0
BACKGROUND_SRGB = (0.06, 0.07, 0.1)
DEFAULT_ENVIRONMENT_HEIGHT = 128


@dataclass(frozen=True)
class PunctualLight:
    """One ``KHR_lights_punctual`` light in world space.

    ``direction`` is the way the light shines (a directional light's rays, a spot's axis),
    a unit vector; ``position`` is unused for directional lights. ``range`` None is infinite.
    Cone angles are the glTF ones (radians, from the axis).
    """

    kind: str  # "directional", "point" or "spot"
    color: tuple[float, float, float] = (1.0, 1.0, 1.0)  # linear RGB
    intensity: float = 1.0  # lux (directional) or candela (point, spot)
    direction: tuple[float, float, float] = (0.0, 0.0, -1.0)
    position: tuple[float, float, float] = (0.0, 0.0, 0.0)
    range: float | None = None
    inner_cone_angle: float = 0.0
    outer_cone_angle: float = math.pi / 4


def _unit(v: tuple[float, float, float]) -> tuple[float, float, float]:
    n = math.sqrt(sum(c * c for c in v))
    return (v[0] / n, v[1] / n, v[2] / n)


# One white key light from the front-upper-right, shining down and back (towards -X, -Y, -Z).
# With a white Lambert surface facing it, it adds intensity / pi = 0.64 of the albedo.
DEFAULT_LIGHTS: tuple[PunctualLight, ...] = (
    PunctualLight(kind="directional", intensity=2.0, direction=_unit((-0.4, -1.0, -0.6))),
)


def equirect_directions(height: int) -> F32:
    """Unit directions (height, 2 * height, 3) of the texel centres, in the convention above."""
    width = 2 * height
    u = (np.arange(width, dtype=np.float64) + 0.5) / width
    v = (np.arange(height, dtype=np.float64) + 0.5) / height
    theta = (u - 0.5) * 2 * math.pi  # atan2(z, x)
    phi = (v - 0.5) * math.pi  # asin(y), -pi/2 at row 0 (down)
    cos_phi = np.cos(phi)[:, None]
    d = np.empty((height, width, 3), dtype=np.float64)
    d[..., 0] = cos_phi * np.cos(theta)[None, :]
    d[..., 1] = np.sin(phi)[:, None]
    d[..., 2] = cos_phi * np.sin(theta)[None, :]
    return d.astype(np.float32)


def _soft_light(
    d: npt.NDArray[np.float64], towards: tuple[float, float, float], width: float
) -> Any:
    axis = np.asarray(_unit(towards), dtype=np.float64)
    cos_a = d @ axis
    return np.exp((cos_a - 1.0) / (width * width))


def default_environment(height: int = DEFAULT_ENVIRONMENT_HEIGHT) -> F32:
    """A neutral studio: a bright soft top, a grey horizon and a darker ground, with two broad
    soft panels (key from the upper front-right, fill from the upper back-left) so that glossy
    metal shows shape. No hard sun: the key light is a punctual light (DEFAULT_LIGHTS)."""
    d = equirect_directions(height).astype(np.float64)
    y = d[..., 1]
    top = np.array([0.95, 0.97, 1.0])
    horizon = np.array([0.55, 0.55, 0.55])
    ground = np.array([0.16, 0.15, 0.14])
    up = np.clip(y, 0.0, 1.0) ** 0.6
    down = np.clip(-y, 0.0, 1.0) ** 0.5
    sky = horizon + (top - horizon) * up[..., None]
    env = np.where((y >= 0)[..., None], sky, horizon + (ground - horizon) * down[..., None])
    env = env + 2.5 * _soft_light(d, (0.6, 0.7, 0.8), 0.35)[..., None] * np.array([1.0, 0.98, 0.95])
    env = env + 1.2 * _soft_light(d, (-0.7, 0.5, -0.6), 0.45)[..., None] * np.array(
        [0.95, 0.97, 1.0]
    )
    return np.ascontiguousarray(env, dtype=np.float32)
