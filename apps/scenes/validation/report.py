"""The validation report: what was found, in words a creator can act on, plus scene stats."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Severity = Literal["error", "warning", "info"]

# A stored report keeps this many issues of each code; the rest are counted in its group.
EXAMPLES_PER_CODE = 3
_SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}

# What to do, for the rejections creators meet most; a group carries its code's hint.
HINTS: dict[str, str] = {
    "glb_magic": "Upload the .glb file your tool exported (not a web page or another format).",
    "glb_truncated": "The file is cut short: upload it again, or export it again from your tool.",
    "zip_no_scene": (
        "Put the scene in the zip: a .glb; a .gltf with its .bin and textures; an .obj with its "
        ".mtl and textures; or an .fbx with its textures."
    ),
    "zip_multiple_scenes": "Upload one scene per zip, each with its own textures.",
    "resource_missing": "Add the missing file to the zip, at the path the scene names it by.",
    "conversion_failed": (
        "Open the file in your modelling tool and export it again (FBX or OBJ), or export "
        "glTF (.glb) directly, which needs no conversion."
    ),
    "conversion_timeout": "Simplify the model (fewer objects and triangles) or export glTF (.glb).",
    "conversion_output_too_large": "Reduce the model's size, or export it as glTF (.glb).",
    "too_many_triangles": "Decimate the meshes (Blender: Decimate modifier) or split the scene.",
    "texture_missing": "Upload a zip with the model and its textures to keep them.",
}
KHRONOS_ERROR_HINT = (
    "The file breaks the glTF 2.0 rules (the official Khronos glTF-Validator found it). Export "
    "it again from your tool, or repair it with a glTF tool such as gltf-transform, and upload "
    "the new file."
)

# The two triangle counts a report shows beside each other, named so they are not confused.
STAT_LABELS = {
    "triangles": "triangles drawn (every instance of a mesh counted)",
    "unique_triangles": "unique triangles (each mesh once, as the Khronos validator counts)",
}


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
    unique_triangles: int = 0  # each mesh's triangles once (the Khronos validator's figure)
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


def issue_groups(issues: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Issues grouped by (code, severity): count, the first message, a few example pointers and
    what to do; errors first. A file with 200 bad accessors is one line, not 200."""
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for issue in issues:
        code = str(issue.get("code", ""))
        severity = str(issue.get("severity", "error"))
        group = groups.get((code, severity))
        if group is None:
            source = str(issue.get("source", "platform"))
            hint = HINTS.get(code) or (
                KHRONOS_ERROR_HINT if source == "khronos" and severity == "error" else ""
            )
            group = groups[(code, severity)] = {
                "code": code,
                "severity": severity,
                "source": source,
                "count": 0,
                "message": issue.get("message", ""),
                "examples": [],
                "hint": hint,
            }
        group["count"] += 1
        if len(group["examples"]) < EXAMPLES_PER_CODE:
            group["examples"].append(issue.get("pointer") or "")
    return sorted(groups.values(), key=lambda g: _SEVERITY_ORDER.get(g["severity"], 3))


def grouped_report(report: dict[str, Any]) -> dict[str, Any]:
    """The report as stored: ``issue_groups`` over every issue, and of the ``issues`` themselves
    only the first :data:`EXAMPLES_PER_CODE` of each code (the groups keep the counts)."""
    issues = list(report.get("issues") or [])
    kept: list[dict[str, Any]] = []
    seen: Counter[tuple[Any, Any]] = Counter()
    for issue in issues:
        key = (issue.get("code"), issue.get("severity"))
        seen[key] += 1
        if seen[key] <= EXAMPLES_PER_CODE:
            kept.append(issue)
    groups = issue_groups(issues)
    if (report.get("khronos") or {}).get("truncated"):
        for group in groups:  # the validator stopped counting: these are lower bounds
            group["at_least"] = group["source"] == "khronos"
    return {**report, "issues": kept, "issue_groups": groups, "stat_labels": STAT_LABELS}
