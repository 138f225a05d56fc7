"""What a loaded scene is: flat, GPU-ready data (pure numpy, no GL), and the package shape the
loader reads (``scene.py`` builds it from a glTF document; the renderer, culling, level of detail
and animation read it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from workers.rendering.environment import PunctualLight

# Interleaved vertex layout: position 3f, normal 3f, uv0 2f, colour 4f, uv1 2f.
VERTEX_FLOATS = 14

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]


class PackageLike(Protocol):
    document: dict[str, Any]

    def read_accessor(self, index: int) -> npt.NDArray[Any]: ...

    def image_bytes(self, index: int) -> bytes: ...


@dataclass
class SamplerInfo:
    repeat_x: bool = True
    repeat_y: bool = True
    mag_linear: bool = True
    min_linear: bool = True
    mipmaps: bool = True
    mirror_x: bool = False  # MIRRORED_REPEAT (wins over repeat_x)
    mirror_y: bool = False


@dataclass(frozen=True)
class RenderWarning:
    """A feature that will not render as authored. ``code`` is stable (reports, tests);
    ``feature`` names it (an extension, a texture slot, a sampler mode)."""

    code: str
    feature: str
    message: str
    pointer: str = ""  # JSON pointer to where it is first used ("" = the file)

    def as_issue(self) -> dict[str, str]:
        """The scene version's report entry (apps/scenes/validation/report.Issue's fields)."""
        return {
            "code": self.code,
            "severity": "warning",
            "message": f"{self.feature}: {self.message}",
            "pointer": self.pointer,
            "source": "renderer",
            "feature": self.feature,
        }


@dataclass(frozen=True)
class TextureRef:
    """A material's use of a texture: which GPU texture, which UV set, which transform."""

    slot: int  # index into SceneData.textures
    texcoord: int = 0  # 0 or 1
    # KHR_texture_transform as the top two rows of the 3x3 UV matrix (row-major), or None.
    transform: tuple[float, float, float, float, float, float] | None = None


@dataclass
class TextureData:
    rgba: npt.NDArray[np.uint8]  # (h, w, 4), top row first (glTF UV origin is top-left)
    sampler: SamplerInfo
    srgb: bool = False  # colour data (base colour, emissive): decoded to linear on sampling


@dataclass
class MaterialData:
    base_color: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    base_texture: TextureRef | None = None
    metallic: float = 1.0
    roughness: float = 1.0
    metallic_roughness_texture: TextureRef | None = None  # B = metal, G = rough
    normal_texture: TextureRef | None = None
    normal_scale: float = 1.0
    occlusion_texture: TextureRef | None = None  # R
    occlusion_strength: float = 1.0
    emissive: tuple[float, float, float] = (0.0, 0.0, 0.0)  # times emissive_strength
    emissive_texture: TextureRef | None = None
    alpha_mode: str = "OPAQUE"
    alpha_cutoff: float = 0.5
    double_sided: bool = False
    unlit: bool = False
    f0: float = 0.04  # dielectric reflectance at normal incidence, ((ior - 1) / (ior + 1))^2
    specular: float = 1.0  # KHR_materials_specular factor (its textures are not drawn)
    specular_color: tuple[float, float, float] = (1.0, 1.0, 1.0)
    clearcoat: float = 0.0  # KHR_materials_clearcoat factors (its textures are not drawn)
    clearcoat_roughness: float = 0.0


@dataclass
class DrawRange:
    material: int  # index into SceneData.materials
    first: int  # first index in the index buffer
    count: int  # number of indices


@dataclass
class Chunk:
    """One primitive instance inside a material's draw range, for culling and level of detail.

    ``lods[0]`` is the full-detail index range; later entries are simplified copies appended to
    the index buffer (see ``workers/rendering/lod.py``) with their world-space geometric error.
    """

    material: int
    center: tuple[float, float, float]
    radius: float
    lods: list[tuple[int, int, float]]  # (first index, index count, error in metres)


@dataclass
class SceneData:
    vertices: F32  # (n, VERTEX_FLOATS)
    indices: npt.NDArray[np.uint32]
    materials: list[MaterialData]
    textures: list[TextureData]
    draws: list[DrawRange]  # opaque, then mask, then blend
    bounds_min: F64
    bounds_max: F64
    triangles: int
    skipped: list[str] = field(default_factory=list)  # one line per skipped feature
    chunks: list[Chunk] = field(default_factory=list)  # in draw order, inside ``draws``
    warnings: list[RenderWarning] = field(default_factory=list)  # what won't look as authored
    lights: list[PunctualLight] | None = None  # KHR_lights_punctual; None: the default lights

    @property
    def empty(self) -> bool:
        return self.triangles == 0
