"""Fixes to the GLB that assimp writes from an FBX/OBJ, so that what the creator made passes.

The converter's output is ours to make valid, not the creator's (issue 20): assimp writes
texture paths instead of texture data, skin weights that sum to 0.99993 and material factors
outside glTF's ranges (an emissive π from a 3ds Max PBR material, a roughness of -0.26 from a
shiny Phong one). :func:`repair_converted` fixes each in place, before the Khronos validator
sees the file, and returns one named :class:`Issue` per fix for the report:

- ``texture_embedded`` (info): a texture the model names was found in the upload (a zip)
  and is now inside the GLB; ``texture_missing`` / ``texture_unreadable`` (warning): it was
  not, or could not be decoded, and is plain white in the scene.
- ``texture_converted`` (info): a texture the model carries in another format (TGA, BMP) is
  now PNG.
- ``skin_weights_normalised`` (info): JOINTS/WEIGHTS rescaled so every vertex sums to 1.
- ``normals_normalised`` (info): NORMAL vectors rescaled to length 1 (zero ones become +Y).
- ``animation_times_fixed`` (info): repeated key times moved to strictly increase.
- ``fbx_pivots_merged`` (info): assimp's ``$AssimpFbx$`` pivot helpers merged into animated
  nodes (Mixamo characters flew apart otherwise).
- ``material_factor_clamped`` (warning): a factor put back into its range (an emissive
  factor over 1 keeps its brightness in ``KHR_materials_emissive_strength``).

Texture lookups read only entries of the uploaded zip (:class:`ZipFiles`), never the disk:
an absolute or ``..`` path in an FBX/MTL can at most name another file of the same zip.
No Django here (the processing child does not load it).
"""

from __future__ import annotations

import base64
import io
import posixpath
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import numpy.typing as npt

from workers.protocol.geometry import mat3_to_quat
from workers.rendering.gltf_builder import glb_bytes
from workers.rendering.gltf_package import (
    GltfLimits,
    GltfPackage,
    GltfPackageError,
    ZipSource,
    parse_glb,
    sniff_image,
)

from .report import Issue

# A 1x1 white PNG: stands in for a texture the model names but the upload lacks.
WHITE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4//8/AAX+Av4N70a4AAAAAElFTkSuQmCC"
)

# The codes of fixes to values assimp wrote (``processing.converted_from.normalised`` lists them).
REPAIR_CODES = (
    "skin_weights_normalised",
    "material_factor_clamped",
    "normals_normalised",
    "animation_times_fixed",
    "fbx_pivots_merged",
)

_FLOAT = 5126
_ARRAY_BUFFER = 34962


class ZipFiles:
    """Name lookup in an uploaded zip the way creators' tools name files.

    A model names its files relative to itself, often Windows-style (``.\\tex.jpg``,
    ``Textures\\Wood.JPG``), in another letter case than the file in the zip, or by an absolute
    path on the creator's machine (``C:\\Users\\me\\model\\wood.png``). :meth:`find` tries the
    path relative to the model's folder (any case), then the file name alone anywhere in the zip.
    """

    def __init__(self, source: ZipSource, model_name: str, limits: GltfLimits) -> None:
        self.source = source
        self.limits = limits
        self.model_name = model_name
        self.base = posixpath.dirname(model_name)
        self._by_lower: dict[str, str] = {}
        self._by_basename: dict[str, list[str]] = {}
        for name in sorted(source.entries, key=lambda n: (n.count("/"), n)):
            if name.startswith("__MACOSX/"):
                continue
            self._by_lower.setdefault(name.lower(), name)
            self._by_basename.setdefault(posixpath.basename(name).lower(), []).append(name)

    def find(self, reference: str) -> str | None:
        """The zip entry a model's file reference means, or None."""
        for ref in dict.fromkeys((reference, unquote(reference))):
            ref = ref.strip().strip('"').replace("\\", "/")
            if not ref:
                continue
            drive_or_absolute = ref.startswith("/") or (len(ref) > 1 and ref[1] == ":")
            if not drive_or_absolute:
                joined = posixpath.normpath(posixpath.join(self.base, ref))
                if not joined.startswith("../") and joined in self._by_lower:
                    return self._by_lower[joined]
                lowered = joined.lower()
                if not lowered.startswith("../") and lowered in self._by_lower:
                    return self._by_lower[lowered]
            # The shallowest file of that name: the creator's folder layout is theirs.
            same_name = self._by_basename.get(posixpath.basename(ref).lower())
            if same_name:
                return same_name[0]
        return None

    def read(self, name: str) -> bytes:
        return self.source.read(name, self.limits.max_file_bytes, "")


# The formats creators' textures come in; Pillow tries no other decoder on upload data.
_TEXTURE_FORMATS = ("TGA", "BMP", "TIFF", "GIF", "WEBP", "PPM", "DDS", "PNG", "JPEG")


def _as_gltf_image(data: bytes, limits: GltfLimits) -> tuple[bytes, str]:
    """PNG/JPEG as they are; other formats creators' textures come in (TGA, BMP, TIFF, GIF,
    WebP, ...) decoded to PNG by Pillow, refused past the pixel limit before decoding."""
    try:
        info = sniff_image(data)
    except GltfPackageError as exc:  # a PNG/JPEG signature with a broken header
        raise ValueError(exc.message) from None
    if info is not None and info.mime_type in ("image/png", "image/jpeg"):
        return data, info.mime_type
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = limits.max_image_pixels  # larger: DecompressionBombError
    with Image.open(io.BytesIO(data), formats=_TEXTURE_FORMATS) as img:
        if img.width * img.height > limits.max_image_pixels:
            raise ValueError(f"{img.width}x{img.height} is more pixels than allowed")
        out = io.BytesIO()
        img.convert("RGBA" if "A" in img.getbands() else "RGB").save(out, "PNG")
    return out.getvalue(), "image/png"


class _Glb:
    """The converted GLB being edited: its document and BIN chunk, growing at the end."""

    def __init__(self, document: dict[str, Any], bin_chunk: bytes | None) -> None:
        self.document = document
        self.bin = bytearray(bin_chunk or b"")
        self.changed = False

    def add_view(self, data: bytes, *, target: int | None = None) -> int:
        buffers = self.document.setdefault("buffers", [])
        if not buffers:
            buffers.append({"byteLength": 0})
        self.bin += bytes(-len(self.bin) % 4)  # accessors need 4-byte alignment
        view: dict[str, Any] = {"buffer": 0, "byteOffset": len(self.bin), "byteLength": len(data)}
        if target is not None:
            view["target"] = target
        self.bin += data
        buffers[0]["byteLength"] = len(self.bin)
        views = self.document.setdefault("bufferViews", [])
        views.append(view)
        self.changed = True
        return len(views) - 1

    def view_bytes(self, index: Any) -> bytes:
        view = self.document["bufferViews"][index]
        if view.get("buffer", 0) != 0 or isinstance(index, bool):
            raise ValueError("not in the GLB's own buffer")
        start = int(view.get("byteOffset", 0))
        return bytes(self.bin[start : start + int(view["byteLength"])])

    def package(self) -> GltfPackage:
        return GltfPackage(document=self.document, buffers=[bytes(self.bin)])


def _embed_textures(
    glb: _Glb, files: ZipFiles | None, kind: str, limits: GltfLimits
) -> list[Issue]:
    issues: list[Issue] = []
    embedded: dict[str, tuple[int, str]] = {}  # zip entry -> (bufferView, mimeType)
    white: int | None = None
    for i, image in enumerate(glb.document.get("images") or []):
        if not isinstance(image, dict):
            continue
        pointer = f"/images/{i}"
        uri = image.get("uri")
        if "bufferView" in image:
            issues += _embedded_as_png(glb, image, pointer, kind, limits)
            continue
        if not isinstance(uri, str) or uri[:5].lower() == "data:":
            continue
        shown = uri[:160]
        name = files.find(uri) if files is not None else None
        if name is None:
            where = (
                "is not in the zip"
                if files is not None
                else "was not uploaded (a single file cannot carry it)"
            )
            issues.append(
                Issue(
                    "texture_missing",
                    "warning",
                    f"The {kind} file uses the texture '{shown}', which {where}; it is plain "
                    f"white in the scene. To keep it, upload a zip with the {kind} file and its "
                    "textures.",
                    pointer,
                )
            )
        elif name not in embedded:
            try:
                data, mime = _as_gltf_image(files.read(name), limits)  # type: ignore[union-attr]
            except GltfPackageError:
                raise  # a zip bomb or an oversized entry: a rejection, not a white texture
            except Exception as exc:  # whatever the decoder says, it is this warning
                issues.append(
                    Issue(
                        "texture_unreadable",
                        "warning",
                        f"The texture '{name}' could not be read as an image ({exc}); it is "
                        "plain white in the scene. Save it as PNG or JPEG and upload again.",
                        pointer,
                    )
                )
                name = None
            else:
                embedded[name] = (glb.add_view(data), mime)
                note = "" if name == uri else f" (named '{shown}' in the {kind} file)"
                issues.append(
                    Issue(
                        "texture_embedded",
                        "info",
                        f"The texture '{name}' from the zip is embedded in the scene{note}.",
                        pointer,
                    )
                )
        image.pop("uri")
        if name is None:
            if white is None:
                white = glb.add_view(WHITE_PNG)
            image["bufferView"], image["mimeType"] = white, "image/png"
        else:
            image["bufferView"], image["mimeType"] = embedded[name]
        glb.changed = True
    return issues


def _embedded_as_png(
    glb: _Glb, image: dict[str, Any], pointer: str, kind: str, limits: GltfLimits
) -> list[Issue]:
    """A texture the model carries inside it (FBX embeds TGA, BMP, ...): PNG/JPEG as it is,
    another format decoded into a PNG, an undecodable one white."""
    try:
        data = glb.view_bytes(image["bufferView"])
    except (KeyError, IndexError, TypeError, ValueError):
        return []  # a broken reference: the validator names it
    try:
        info = sniff_image(data)
    except GltfPackageError:
        info = None  # a broken header: the decoder below says so
    if info is not None and info.mime_type in ("image/png", "image/jpeg"):
        if image.get("mimeType") != info.mime_type:
            image["mimeType"] = info.mime_type
            glb.changed = True
        return []
    was = image.get("mimeType") or "an unknown format"
    try:
        png, mime = _as_gltf_image(data, limits)
    except Exception as exc:  # whatever the decoder says, it is this warning
        image["bufferView"], image["mimeType"] = glb.add_view(WHITE_PNG), "image/png"
        return [
            Issue(
                "texture_unreadable",
                "warning",
                f"A texture inside the {kind} file ({was}) could not be read as an image "
                f"({exc}); it is plain white in the scene. Use PNG or JPEG textures.",
                pointer,
            )
        ]
    image["bufferView"], image["mimeType"] = glb.add_view(png), mime
    return [
        Issue(
            "texture_converted",
            "info",
            f"A texture inside the {kind} file ({was}) was converted to PNG, which glTF needs.",
            pointer,
        )
    ]


def normalised_weights(
    joints: list[npt.NDArray[Any]], weights: list[npt.NDArray[Any]]
) -> tuple[list[npt.NDArray[np.float32]], int, float]:
    """Weights of each vertex (over all WEIGHTS_n sets) rescaled to sum to 1 in float32.

    Negative weights become 0; a vertex with no weight left gets 1 on its first joint slot
    (joint indices are kept, so it follows that joint). Returns the new sets, how many vertices
    changed and the worst original sum's distance from 1.
    """
    del joints  # indices are kept as they are; only the weights change
    w = np.concatenate([np.asarray(s, np.float64) for s in weights], axis=1)
    w = np.where(np.isfinite(w), np.maximum(w, 0.0), 0.0)
    total = w.sum(axis=1)
    empty = total <= 0.0
    w[empty, 0] = 1.0
    total[empty] = 1.0
    out = (w / total[:, None]).astype(np.float32)
    # float32 rounding can leave a sum of 1 - 2e-7; fold the remainder into the largest weight.
    largest = out.argmax(axis=1)
    rows = np.arange(len(out))
    out[rows, largest] += np.float32(1.0) - out.sum(axis=1, dtype=np.float32)
    original = np.concatenate([np.asarray(s, np.float64) for s in weights], axis=1)
    with np.errstate(invalid="ignore"):
        original_sum = original.sum(axis=1)
        off = np.abs(original_sum - 1.0)
        wrong = (
            empty
            | ~np.isfinite(original_sum)
            | (original < 0).any(axis=1)
            | (off > 1.2e-7 * original.shape[1])  # float32's rounding of a true sum of 1
        )
    changed = int(np.count_nonzero(wrong))
    worst = float(np.nanmax(off)) if len(off) else 0.0
    sets = [out[:, 4 * k : 4 * k + 4] for k in range(len(weights))]
    return sets, changed, worst


def _normalise_skin_weights(glb: _Glb) -> list[Issue]:
    issues: list[Issue] = []
    package = glb.package()
    done: dict[tuple[int, ...], list[int]] = {}
    accessors = glb.document.get("accessors") or []
    for m, mesh in enumerate(glb.document.get("meshes") or []):
        for p, prim in enumerate(mesh.get("primitives") or []):
            attrs = prim.get("attributes") or {}
            names = sorted(k for k in attrs if k.startswith("WEIGHTS_"))
            if not names:
                continue
            key = tuple(attrs[n] for n in names)
            if key not in done:
                weights = [package.read_accessor(a) for a in key]
                if any(w.shape[1] != 4 for w in weights):
                    continue  # not glTF skin weights: the validator says so
                sets, changed, worst = normalised_weights([], weights)
                if not changed:
                    done[key] = list(key)
                    continue
                new = []
                for values in sets:
                    view = glb.add_view(values.tobytes(), target=_ARRAY_BUFFER)
                    accessors.append(
                        {
                            "bufferView": view,
                            "componentType": _FLOAT,
                            "count": len(values),
                            "type": "VEC4",
                        }
                    )
                    new.append(len(accessors) - 1)
                done[key] = new
                issues.append(
                    Issue(
                        "skin_weights_normalised",
                        "info",
                        f"The skin weights of {changed} of {len(sets[0])} vertices did not add up "
                        f"to 1 (off by up to {worst:.2g}); the converter rescaled them.",
                        f"/meshes/{m}/primitives/{p}/attributes/{names[0]}",
                    )
                )
            for name, index in zip(names, done[key], strict=True):
                attrs[name] = index
    return issues


# (path inside a material, key, low, high): glTF's ranges for the factors assimp writes.
_FACTOR_RANGES: tuple[tuple[str, str, float, float], ...] = (
    ("", "emissiveFactor", 0.0, 1.0),
    ("", "alphaCutoff", 0.0, float("inf")),
    ("pbrMetallicRoughness", "baseColorFactor", 0.0, 1.0),
    ("pbrMetallicRoughness", "metallicFactor", 0.0, 1.0),
    ("pbrMetallicRoughness", "roughnessFactor", 0.0, 1.0),
    ("occlusionTexture", "strength", 0.0, 1.0),
    ("extensions/KHR_materials_pbrSpecularGlossiness", "diffuseFactor", 0.0, 1.0),
    ("extensions/KHR_materials_pbrSpecularGlossiness", "specularFactor", 0.0, 1.0),
    ("extensions/KHR_materials_pbrSpecularGlossiness", "glossinessFactor", 0.0, 1.0),
    ("extensions/KHR_materials_specular", "specularFactor", 0.0, 1.0),
    ("extensions/KHR_materials_specular", "specularColorFactor", 0.0, float("inf")),
    ("extensions/KHR_materials_transmission", "transmissionFactor", 0.0, 1.0),
    ("extensions/KHR_materials_clearcoat", "clearcoatFactor", 0.0, 1.0),
    ("extensions/KHR_materials_clearcoat", "clearcoatRoughnessFactor", 0.0, 1.0),
    ("extensions/KHR_materials_sheen", "sheenColorFactor", 0.0, 1.0),
    ("extensions/KHR_materials_sheen", "sheenRoughnessFactor", 0.0, 1.0),
    ("extensions/KHR_materials_volume", "thicknessFactor", 0.0, float("inf")),
    ("extensions/KHR_materials_emissive_strength", "emissiveStrength", 0.0, float("inf")),
)


def _clamp(value: Any, low: float, high: float) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return min(high, max(low, float(value))) if value == value else low  # NaN -> low
    if isinstance(value, list):
        return [_clamp(v, low, high) for v in value]
    return value


_EMISSIVE_STRENGTH = "KHR_materials_emissive_strength"


def _emissive_strength(document: dict[str, Any], m: int, material: dict[str, Any]) -> list[Issue]:
    """An emissive factor over 1 (a 3ds Max PBR FBX: emission colour x luminance, e.g. π) is
    brightness, which glTF carries in KHR_materials_emissive_strength: the factor is scaled
    into 0..1 and the strength holds the rest (a renderer without the extension shows the
    clamped colour)."""
    factor = material.get("emissiveFactor")
    if not (
        isinstance(factor, list)
        and len(factor) == 3
        and all(isinstance(v, int | float) and v == v and v < float("inf") for v in factor)
    ):
        return []
    peak = max(float(v) for v in factor)
    if peak <= 1.0:
        return []
    scaled = [max(0.0, float(v) / peak) for v in factor]
    extensions = material.setdefault("extensions", {})
    holder = extensions.setdefault(_EMISSIVE_STRENGTH, {})
    strength = holder.get("emissiveStrength", 1.0)
    strength = float(strength) if isinstance(strength, int | float) and strength >= 0 else 1.0
    holder["emissiveStrength"] = strength * peak
    material["emissiveFactor"] = scaled
    used = document.setdefault("extensionsUsed", [])
    if _EMISSIVE_STRENGTH not in used:
        used.append(_EMISSIVE_STRENGTH)
    return [
        Issue(
            "material_factor_clamped",
            "warning",
            f"emissiveFactor was {_show(factor)}, over glTF's 0..1; the converter made it "
            f"{_show(scaled)} with an emissive strength of {peak * strength:.4g} "
            f"({_EMISSIVE_STRENGTH}), so it glows as bright as in your tool where the renderer "
            "supports that extension.",
            f"/materials/{m}/emissiveFactor",
        )
    ]


def _clamp_material_factors(document: dict[str, Any]) -> list[Issue]:
    issues: list[Issue] = []
    for m, material in enumerate(document.get("materials") or []):
        if not isinstance(material, dict):
            continue
        issues += _emissive_strength(document, m, material)
        for where, key, low, high in _FACTOR_RANGES:
            holder: Any = material
            for part in where.split("/") if where else ():
                holder = holder.get(part) if isinstance(holder, dict) else None
            if not isinstance(holder, dict) or key not in holder:
                continue
            value = holder[key]
            fixed = _clamp(value, low, high)
            if fixed == value:
                continue
            holder[key] = fixed
            pointer = "/".join(["", "materials", str(m), *([where] if where else []), key])
            issues.append(
                Issue(
                    "material_factor_clamped",
                    "warning",
                    f"{key} was {_show(value)}, outside glTF's range; the converter set it to "
                    f"{_show(fixed)}. The material may look a little different from your tool.",
                    pointer,
                )
            )
    return issues


def _show(value: Any) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return f"{value:.4g}" if isinstance(value, float) else repr(value)


_PIVOT_MARK = "_$AssimpFbx$_"


def _matrix_to_trs(m: npt.NDArray[np.float64]) -> dict[str, list[float]]:
    """A 4x4 (math convention) as glTF TRS; any shear is lost, which pivot chains do not have."""
    translation = m[:3, 3]
    basis = m[:3, :3]
    scale = np.linalg.norm(basis, axis=0)
    scale[scale == 0] = 1.0
    r = basis / scale
    if np.linalg.det(r) < 0:  # a mirror: carry it in the scale
        scale[0], r[:, 0] = -scale[0], -r[:, 0]
    q = np.array(mat3_to_quat(r))
    q /= np.linalg.norm(q)
    return {
        "translation": [float(v) for v in translation],
        "rotation": [float(v) for v in q],
        "scale": [float(v) for v in scale],
    }


def _merge_fbx_pivot_helpers(document: dict[str, Any]) -> list[Issue]:
    """assimp keeps an FBX node's pivots as helper parents (``Hips_$AssimpFbx$_PreRotation``,
    ``..._Translation``) but writes the node's animation as its *whole* local transform, so the
    helpers apply twice and an animated Mixamo character flies apart. For each animated node
    whose helpers are not animated themselves, the helpers' transform moves into the node's
    rest pose and the helpers become identity: the animation then means what assimp meant."""
    from .transforms import local_matrix

    nodes = document.get("nodes") or []
    animated: set[int] = set()
    for animation in document.get("animations") or []:
        for channel in animation.get("channels") or []:
            node = (channel.get("target") or {}).get("node")
            if isinstance(node, int) and 0 <= node < len(nodes):
                animated.add(node)
    parent: dict[int, int] = {}
    for i, node in enumerate(nodes):
        for child in node.get("children") or []:
            if isinstance(child, int):
                parent[child] = i
    merged = 0
    for index in sorted(animated):
        name = str(nodes[index].get("name") or "")
        chain: list[int] = []
        up = parent.get(index)
        while up is not None and str(nodes[up].get("name") or "").startswith(name + _PIVOT_MARK):
            chain.append(up)
            up = parent.get(up)
        if not name or not chain or any(h in animated for h in chain):
            continue
        if any("Geometric" in str(nodes[h].get("name")) for h in chain):
            continue  # geometric transforms belong to the mesh, not to the pivot chain
        combined = np.eye(4)
        for helper in reversed(chain):  # outermost first
            combined = combined @ local_matrix(nodes[helper])
        full = combined @ local_matrix(nodes[index])
        node = nodes[index]
        node.pop("matrix", None)
        node.update(_matrix_to_trs(full))
        for helper in chain:
            for key in ("matrix", "translation", "rotation", "scale"):
                nodes[helper].pop(key, None)
        merged += 1
    if not merged:
        return []
    return [
        Issue(
            "fbx_pivots_merged",
            "info",
            f"The pivots of {merged} animated node(s) (assimp's $AssimpFbx$ helper nodes) were "
            "merged into the nodes, so their animation plays as in your tool.",
            "/nodes",
        )
    ]


def _unit_normals(glb: _Glb) -> list[Issue]:
    """NORMAL vectors of length 0 (degenerate faces, an OBJ without normals for them) or not
    of length 1, which glTF requires: rescaled, and a zero normal becomes +Y."""
    package = glb.package()
    accessors = glb.document.get("accessors") or []
    fixed: dict[int, int] = {}
    issues: list[Issue] = []
    for m, mesh in enumerate(glb.document.get("meshes") or []):
        for p, prim in enumerate(mesh.get("primitives") or []):
            attrs = prim.get("attributes") or {}
            index = attrs.get("NORMAL")
            if not isinstance(index, int) or index in fixed.values():
                continue
            if index in fixed:
                attrs["NORMAL"] = fixed[index]
                continue
            normals = package.read_accessor(index).astype(np.float64)
            if normals.ndim != 2 or normals.shape[1] != 3:
                continue
            length = np.linalg.norm(normals, axis=1)
            wrong = ~np.isfinite(length) | (np.abs(length - 1.0) > 5e-4)
            if not wrong.any():
                continue
            good = np.isfinite(length) & (length > 1e-12)
            out = np.where(good[:, None], normals / np.where(good, length, 1.0)[:, None], 0.0)
            out[~good] = (0.0, 1.0, 0.0)
            values = out.astype(np.float32)
            view = glb.add_view(values.tobytes(), target=_ARRAY_BUFFER)
            accessors.append(
                {"bufferView": view, "componentType": _FLOAT, "count": len(values), "type": "VEC3"}
            )
            fixed[index] = attrs["NORMAL"] = len(accessors) - 1
            issues.append(
                Issue(
                    "normals_normalised",
                    "info",
                    f"{int(wrong.sum())} of {len(values)} normals were not of length 1 "
                    f"({int((~good).sum())} of length 0); the converter rescaled them.",
                    f"/meshes/{m}/primitives/{p}/attributes/NORMAL",
                )
            )
    return issues


def _increasing_key_times(glb: _Glb) -> list[Issue]:
    """Animation key times must strictly increase; assimp repeats a time when an FBX has two
    keys on one frame (Mixamo files do). A repeated or smaller time moves to just after the
    previous one (a float32 step: nothing a viewer can see)."""
    package = glb.package()
    accessors = glb.document.get("accessors") or []
    replaced: dict[int, int] = {}
    issues: list[Issue] = []
    for a, animation in enumerate(glb.document.get("animations") or []):
        for sampler in animation.get("samplers") or []:
            index = sampler.get("input")
            if not isinstance(index, int):
                continue
            if index in replaced:
                sampler["input"] = replaced[index]
                continue
            if index in replaced.values():
                continue
            times = package.read_accessor(index).reshape(-1)
            if times.dtype != np.float32 or len(times) < 2 or np.all(np.diff(times) > 0):
                continue
            fixed = times.copy()
            moved = 0
            for k in range(1, len(fixed)):
                if not fixed[k] > fixed[k - 1]:
                    fixed[k] = np.nextafter(fixed[k - 1], np.float32(np.inf))
                    moved += 1
            view = glb.add_view(fixed.tobytes())
            accessors.append(
                {
                    "bufferView": view,
                    "componentType": _FLOAT,
                    "count": len(fixed),
                    "type": "SCALAR",
                    "min": [float(fixed[0])],
                    "max": [float(fixed[-1])],
                }
            )
            replaced[index] = sampler["input"] = len(accessors) - 1
            issues.append(
                Issue(
                    "animation_times_fixed",
                    "info",
                    f"{moved} key time(s) of an animation repeated the previous one; the "
                    "converter moved each just after it, as glTF needs.",
                    f"/animations/{a}",
                )
            )
    return issues


def repair_converted(
    path: Path,
    *,
    kind: str,
    files: ZipFiles | None = None,
    limits: GltfLimits | None = None,
) -> list[Issue]:
    """Fix the converted GLB at ``path`` in place; one issue per fix, for the report."""
    limits = limits or GltfLimits()
    document, bin_chunk = parse_glb(path.read_bytes(), limits)
    glb = _Glb(document, bin_chunk)
    issues = _embed_textures(glb, files, kind, limits)
    issues += _normalise_skin_weights(glb)
    issues += _unit_normals(glb)
    issues += _increasing_key_times(glb)
    issues += _merge_fbx_pivot_helpers(document)
    issues += _clamp_material_factors(document)
    if glb.changed or issues:
        path.write_bytes(glb_bytes(document, bytes(glb.bin) if glb.bin or bin_chunk else None))
    return issues
