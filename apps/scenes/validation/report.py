"""The validation report: what was found, in words a creator can act on, plus scene stats."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Issue:
    code: str  # stable identifier (UI and tests key on it)
    severity: Severity
    message: str  # what is wrong and why, for the creator
    pointer: str = ""  # JSON pointer into the glTF document ("" = the file itself)
    source: str = "platform"  # "khronos": the official glTF-Validator said it; "platform": we did


@dataclass
class SceneStats:
    vertices: int = 0  # POSITION vertices drawn by the default scene (instances counted)
    triangles: int = 0  # triangles drawn by the default scene (instances counted)
    nodes: int = 0
    meshes: int = 0
    materials: int = 0
    textures: int = 0
    images: int = 0
    texture_pixels: int = 0  # sum of declared image pixels
    decoded_bytes: int = 0  # buffers + external images held in memory
    bounds_min: list[float] | None = None  # scene-space AABB after node transforms
    bounds_max: list[float] | None = None


@dataclass
class ValidationReport:
    issues: list[Issue] = field(default_factory=list)
    stats: SceneStats = field(default_factory=SceneStats)
    khronos: dict[str, Any] | None = None  # the Khronos validator's summary (counts, version)
    # Processing notes: "converted_from" (FBX/OBJ import), "decoded" (compression extensions
    # decoded into the render-ready derivative), "derivative" (its file name in the work dir).
    processing: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(i.severity == "error" for i in self.issues)

    @property
    def errors(self) -> list[Issue]:
        return [i for i in self.issues if i.severity == "error"]

    def codes(self) -> list[str]:
        return [i.code for i in self.issues]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form for storage (e.g. a JSONField on the scene version)."""
        return {
            "ok": self.ok,
            "issues": [asdict(i) for i in self.issues],
            "stats": asdict(self.stats),
            "khronos": self.khronos,
            "processing": self.processing,
        }
