"""glTF animations on the CPU: node TRS, morph targets and skins, sampled into posed vertices.

The static path (``scene.py``) bakes node transforms into world-space vertices once. A scene with
``animations`` takes this path instead: :class:`SceneAnimation` keeps each drawn primitive in
object space (with its morph targets and skin), samples the channels of one *clip* (one glTF
``animation``) at a time ``t`` looped over that clip's own duration, and writes posed
world-space positions and normals into an array with exactly the static layout. The renderer
then only rewrites its vertex buffer (``Renderer.update_scene_vertices``, the one hook); draws,
materials and textures are unchanged.
Static scenes never build this, so they stay on the fast path.

Clips are separate, as authored: a file with Survey, Walk and Run plays one of them, looped at
its own length (the other clips' channels do not run; nodes they alone move keep their rest
pose). Which one: the clip named by the caller, else the first (``clips[0]``). Names are the
glTF ``animation.name``; unnamed or repeated ones get a stable made-up name (:func:`clip_names`),
so the platform (which lists them at processing time) and the worker agree.

Who decides the time and the clip: the streaming worker owns the session clock and clip
(``SessionPoses``), so every viewer of a session sees the same pose; thumbnails use the default
clip at ``t = 0``, its first frame.

Culling: chunk bounding spheres are made to cover the poses sampled over every clip, so a
moving part is not culled by its rest-pose bounds. Levels of detail are not built for animated
scenes (their simplification error is measured on one pose only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from workers.rendering.scene import (
    MAX_NODE_DEPTH,
    Chunk,
    PackageLike,
    SceneData,
    _Loader,
    _to_triangle_list,
)
from workers.rendering.transforms import node_local_matrix

log = logging.getLogger(__name__)

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
BOUNDS_SAMPLES = 24  # poses sampled over the loop for the culling spheres
MAX_JOINTS = 1024


@dataclass
class _Channel:
    node: int
    path: str  # translation | rotation | scale | weights
    times: F64
    values: F64  # (keys, width) or (keys * 3, width) for CUBICSPLINE
    interpolation: str


@dataclass
class Clip:
    """One glTF animation: its channels play together, looped over ``duration`` seconds."""

    name: str
    channels: list[_Channel]
    duration: float


def clip_names(document: dict[str, Any]) -> list[str]:
    """The name of each glTF animation, in order: its own ``name`` when it has a unique one,
    else ``Animation <index>`` (with ``#<index>`` appended to a repeated name)."""
    out: list[str] = []
    seen: set[str] = set()
    for i, animation in enumerate(document.get("animations") or []):
        raw = animation.get("name") if isinstance(animation, dict) else None
        name = raw.strip()[:128] if isinstance(raw, str) and raw.strip() else f"Animation {i}"
        if name in seen:
            name = f"{name[:120]} #{i}"
        seen.add(name)
        out.append(name)
    return out


@dataclass
class _Item:
    """One drawn primitive instance: where its vertices sit and how to pose them."""

    node: int
    offset: int  # first vertex in SceneData.vertices
    positions: F32  # object space, (n, 3), already expanded by ``remap`` when flat-shaded
    normals: F32 | None  # None: flat shaded (face normals recomputed per pose)
    pos_targets: F32 | None  # (targets, n, 3) morph deltas
    nrm_targets: F32 | None
    default_weights: F64 | None
    skin: int | None
    joints: npt.NDArray[np.int64] | None  # (n, 4)
    weights: F32 | None  # (n, 4)


def _slerp(a: F64, b: F64, u: float) -> F64:
    dot = float(np.dot(a, b))
    if dot < 0.0:
        b, dot = -b, -dot
    if dot > 0.9995:  # nearly parallel: linear is exact enough and stable
        out = a + u * (b - a)
    else:
        theta = np.arccos(dot)
        out = (np.sin((1 - u) * theta) * a + np.sin(u * theta) * b) / np.sin(theta)
    result: F64 = out / max(float(np.linalg.norm(out)), 1e-12)
    return result


def sample(channel: _Channel, t: float) -> F64:
    """The channel's value at ``t`` (clamped to its keyframe range)."""
    times = channel.times
    cubic = channel.interpolation == "CUBICSPLINE"
    n = times.shape[0]
    i = int(np.searchsorted(times, t, side="right")) - 1
    if i < 0 or n == 1:
        i, u, dt = 0, 0.0, 0.0
    elif i >= n - 1:
        i, u, dt = n - 1, 0.0, 0.0
    else:
        dt = float(times[i + 1] - times[i])
        u = float((t - times[i]) / dt) if dt > 0 else 0.0
    if cubic:
        v = channel.values.reshape(n, 3, -1)  # in-tangent, value, out-tangent
        if u == 0.0:
            out = v[i, 1]
        else:
            u2, u3 = u * u, u * u * u
            out = (
                (2 * u3 - 3 * u2 + 1) * v[i, 1]
                + (u3 - 2 * u2 + u) * dt * v[i, 2]
                + (-2 * u3 + 3 * u2) * v[i + 1, 1]
                + (u3 - u2) * dt * v[i + 1, 0]
            )
        return out / np.linalg.norm(out) if channel.path == "rotation" else out
    values = channel.values
    if u == 0.0 or channel.interpolation == "STEP":
        return values[i]
    if channel.path == "rotation":
        return _slerp(values[i], values[i + 1], u)
    result: F64 = values[i] + u * (values[i + 1] - values[i])
    return result


class _AnimLoader(_Loader):
    """The static loader, kept in object space, remembering each primitive it draws."""

    def __init__(self, package: PackageLike) -> None:
        super().__init__(package)
        self.node: int = -1
        self.items: list[tuple[int, int, _Item]] = []  # (material slot, batch position, item)

    def walk(self) -> None:
        doc, nodes = self.doc, self.doc.get("nodes") or []
        scenes = doc.get("scenes") or []
        if scenes:
            roots = list(scenes[int(doc.get("scene", 0))].get("nodes", []))
        else:
            children = {c for n in nodes for c in n.get("children", [])}
            roots = [i for i in range(len(nodes)) if i not in children]
        stack = [(int(r), 0) for r in reversed(roots)]
        seen: set[int] = set()
        while stack:
            index, depth = stack.pop()
            if index in seen or depth > MAX_NODE_DEPTH or not 0 <= index < len(nodes):
                self.skip(f"node {index}: cycle, depth or reference")
                continue
            seen.add(index)
            node = nodes[index]
            if "mesh" in node:
                self.node = index
                self.add_mesh(int(node["mesh"]), np.eye(4))  # object space; posed per frame
            stack.extend((int(c), depth + 1) for c in reversed(node.get("children", [])))

    def add_primitive(self, prim: dict[str, Any], world: F64) -> None:
        slot = self.material_slot(prim.get("material"))
        before = len(self.batches.get(slot, []))
        super().add_primitive(prim, world)
        batch = self.batches.get(slot, [])
        if len(batch) == before:
            return  # skipped by the static loader (mode, empty, ...)
        verts = batch[-1][0]
        attrs = prim.get("attributes", {})
        n_src = int(np.asarray(self.pkg.read_accessor(int(attrs["POSITION"]))).shape[0])
        remap: npt.NDArray[np.int64] | None = None
        if "NORMAL" not in attrs:  # the static loader un-shared the vertices
            idx = (
                np.asarray(self.pkg.read_accessor(int(prim["indices"]))).reshape(-1)
                if "indices" in prim
                else np.arange(n_src)
            )
            remap = _to_triangle_list(idx.astype(np.uint32), int(prim.get("mode", 4))).astype(
                np.int64
            )

        def per_vertex(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a[remap] if remap is not None else a

        pos_t = nrm_t = None
        targets = prim.get("targets") or []
        if targets:
            pos_t = np.zeros((len(targets), verts.shape[0], 3), np.float32)
            nrm_t = np.zeros_like(pos_t)
            for k, target in enumerate(targets):
                if "POSITION" in target:
                    pos_t[k] = per_vertex(self._floats(target["POSITION"], 3))
                if "NORMAL" in target and remap is None:
                    nrm_t[k] = self._floats(target["NORMAL"], 3)
        node = self.doc["nodes"][self.node]
        mesh = self.doc["meshes"][int(node["mesh"])]
        weights = node.get("weights", mesh.get("weights"))
        joints = skin_w = None
        skin = node.get("skin")
        if skin is not None and "JOINTS_0" in attrs and "WEIGHTS_0" in attrs:
            joints = per_vertex(np.asarray(self.pkg.read_accessor(int(attrs["JOINTS_0"])))).astype(
                np.int64
            )
            skin_w = per_vertex(self._floats(attrs["WEIGHTS_0"], 4))
            if "JOINTS_1" in attrs:
                self.skip("skin influences past 4 per vertex (JOINTS_1)")
        item = _Item(
            node=self.node,
            offset=0,
            positions=np.ascontiguousarray(verts[:, 0:3]),
            normals=None if remap is not None else np.ascontiguousarray(verts[:, 3:6]),
            pos_targets=pos_t,
            nrm_targets=nrm_t,
            default_weights=None if weights is None else np.asarray(weights, np.float64),
            skin=int(skin) if joints is not None and skin is not None else None,
            joints=joints,
            weights=skin_w,
        )
        self.items.append((slot, len(batch) - 1, item))


class SceneAnimation:
    """A scene's animations, sampled into posed vertex arrays; see the module docstring."""

    def __init__(self, package: PackageLike) -> None:
        self.doc = package.document
        loader = _AnimLoader(package)
        loader.walk()
        self.static = loader.finish()
        self.skipped = loader.skipped
        # Vertex offsets follow finish(): slots in draw order, batch entries in order.
        order = {"OPAQUE": 0, "MASK": 1, "BLEND": 2}
        slots = sorted(loader.batches, key=lambda s: order[loader.materials[s].alpha_mode])
        offsets: dict[tuple[int, int], int] = {}
        base = 0
        for slot in slots:
            for pos, (verts, _) in enumerate(loader.batches[slot]):
                offsets[(slot, pos)] = base
                base += verts.shape[0]
        self.items = [replace(item, offset=offsets[(s, p)]) for s, p, item in loader.items]
        self.items.sort(key=lambda it: it.offset)
        self.nodes: list[dict[str, Any]] = list(self.doc.get("nodes") or [])
        self.parents = {c: i for i, n in enumerate(self.nodes) for c in n.get("children", [])}
        self.clips = self._clips(package)
        self.channels = [c for clip in self.clips for c in clip.channels]
        self._by_name = {clip.name: clip for clip in self.clips}
        self.skins = self._skins(package)
        self._vertices = self.static.vertices.copy()

    @classmethod
    def from_package(cls, package: PackageLike) -> SceneAnimation | None:
        """None for a scene without animations: it stays on the static fast path."""
        if not package.document.get("animations"):
            return None
        anim = cls(package)
        return anim if anim.channels else None

    def _clips(self, package: PackageLike) -> list[Clip]:
        """Every animation with at least one channel we can play, as its own clip."""
        clips: list[Clip] = []
        names = clip_names(self.doc)
        for a, animation in enumerate(self.doc.get("animations") or []):
            channels = self._channels(package, animation)
            log.debug("animation %d: %d channels", a, len(animation.get("channels") or []))
            if channels:
                duration = max(float(c.times[-1]) for c in channels)
                clips.append(Clip(names[a], channels, duration))
        return clips

    def _channels(self, package: PackageLike, animation: dict[str, Any]) -> list[_Channel]:
        out: list[_Channel] = []
        samplers = animation.get("samplers") or []
        for channel in animation.get("channels") or []:
            target = channel.get("target") or {}
            if "node" not in target or target.get("path") not in (
                "translation",
                "rotation",
                "scale",
                "weights",
            ):
                continue  # e.g. KHR_animation_pointer targets: not supported
            sampler = samplers[int(channel["sampler"])]
            times = np.asarray(package.read_accessor(int(sampler["input"])), np.float64)
            values = np.asarray(package.read_accessor(int(sampler["output"])), np.float64)
            times = times.reshape(-1)
            keys = times.shape[0]
            if keys == 0:
                continue
            interpolation = str(sampler.get("interpolation", "LINEAR"))
            rows = keys * 3 if interpolation == "CUBICSPLINE" else keys
            out.append(
                _Channel(
                    node=int(target["node"]),
                    path=str(target["path"]),
                    times=times,
                    values=values.reshape(rows, -1),
                    interpolation=interpolation,
                )
            )
        return out

    def _skins(self, package: PackageLike) -> list[tuple[list[int], F64]]:
        skins: list[tuple[list[int], F64]] = []
        for skin in self.doc.get("skins") or []:
            joints = [int(j) for j in skin.get("joints", [])][:MAX_JOINTS]
            if "inverseBindMatrices" in skin:
                ibm = np.asarray(
                    package.read_accessor(int(skin["inverseBindMatrices"])), np.float64
                )
                ibm = ibm.reshape(-1, 4, 4).transpose(0, 2, 1)[: len(joints)]  # column-major
            else:
                ibm = np.tile(np.eye(4), (len(joints), 1, 1))
            skins.append((joints, ibm))
        return skins

    # -- posing ---------------------------------------------------------------------------------
    def clip(self, name: str | None = None) -> Clip:
        """The clip called ``name``; the first one for None, "" or a name this scene lacks (the
        platform checks names before they get here; the worker must still never fail)."""
        return self._by_name.get(name or "", self.clips[0])

    @property
    def duration(self) -> float:
        """The default (first) clip's length in seconds."""
        return self.clips[0].duration

    def loop_time(self, t: float, clip: str | None = None) -> float:
        length = self.clip(clip).duration
        return float(t % length) if length > 0 else 0.0

    def _world_matrices(self, t: float, clip: Clip) -> tuple[list[F64], dict[int, F64]]:
        trs: dict[int, dict[str, Any]] = {}
        weights: dict[int, F64] = {}
        for ch in clip.channels:
            value = sample(ch, t)
            if ch.path == "weights":
                weights[ch.node] = value.reshape(-1)
            else:
                trs.setdefault(ch.node, {})[ch.path] = value.reshape(-1).tolist()
        local = [
            node_local_matrix({**node, **trs[i]} if i in trs else node)
            for i, node in enumerate(self.nodes)
        ]
        world: list[F64 | None] = [None] * len(self.nodes)

        def resolve(i: int) -> F64:
            chain: list[int] = []
            j: int | None = i
            while j is not None and world[j] is None and len(chain) <= MAX_NODE_DEPTH:
                chain.append(j)
                j = self.parents.get(j)
            start = world[j] if j is not None else None
            acc: F64 = start if start is not None else np.eye(4)
            for k in reversed(chain):
                acc = acc @ local[k]
                world[k] = acc
            result = world[i]
            return result if result is not None else np.eye(4)

        return [resolve(i) for i in range(len(self.nodes))], weights

    def pose(self, t: float, clip: str | None = None) -> F32:
        """Posed vertices at ``t`` seconds into ``clip`` (looped at that clip's length; None:
        the first clip), in the static layout; a reused buffer."""
        chosen = self.clip(clip)
        t = self.loop_time(t, chosen.name)
        world, anim_weights = self._world_matrices(t, chosen)
        out = self._vertices
        joint_mats = [
            np.stack([world[j] for j in joints]) @ ibm if joints else np.zeros((0, 4, 4))
            for joints, ibm in self.skins
        ]
        for item in self.items:
            pos = item.positions.astype(np.float64)
            nrm = None if item.normals is None else item.normals.astype(np.float64)
            w = anim_weights.get(item.node, item.default_weights)
            if item.pos_targets is not None and w is not None:
                k = min(len(w), item.pos_targets.shape[0])
                pos = pos + np.tensordot(w[:k], item.pos_targets[:k], axes=1)
                if nrm is not None and item.nrm_targets is not None:
                    nrm = nrm + np.tensordot(w[:k], item.nrm_targets[:k], axes=1)
            if item.skin is not None and item.joints is not None and item.weights is not None:
                mats = joint_mats[item.skin]
                joints = np.clip(item.joints, 0, max(len(mats) - 1, 0))
                blend = np.einsum("nk,nkij->nij", item.weights.astype(np.float64), mats[joints])
                new_pos = np.einsum("nij,nj->ni", blend[:, :3, :3], pos) + blend[:, :3, 3]
                if nrm is not None:
                    nrm = np.einsum("nij,nj->ni", blend[:, :3, :3], nrm)
                pos = new_pos
            else:
                m = world[item.node]
                pos = pos @ m[:3, :3].T + m[:3, 3]
                if nrm is not None:
                    nrm = nrm @ np.linalg.inv(m[:3, :3])
            n = pos.shape[0]
            view = out[item.offset : item.offset + n]
            view[:, 0:3] = pos
            if nrm is None:  # flat shaded: one face normal per triangle
                tri = pos.reshape(-1, 3, 3)
                nrm = np.repeat(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), 3, axis=0)
            length = np.linalg.norm(nrm, axis=1, keepdims=True)
            view[:, 3:6] = nrm / np.maximum(length, 1e-12)
        return out

    def scene_at(self, t: float, clip: str | None = None) -> SceneData:
        """The scene posed at ``t`` into ``clip``, with culling spheres that cover every clip's
        whole loop (so switching clips needs no new spheres)."""
        chunks: list[Chunk] = []
        lo = hi = None
        # Fewer samples per clip when there are many: loading stays bounded.
        per_clip = max(6, min(BOUNDS_SAMPLES, 4 * BOUNDS_SAMPLES // len(self.clips)))
        for each in self.clips:
            length = each.duration
            samples = [length * k / per_clip for k in range(per_clip + 1)]
            for s in samples if length > 0 else [0.0]:
                p = self.pose(s, each.name)[:, 0:3]
                lo = p.copy() if lo is None else np.minimum(lo, p)
                hi = p.copy() if hi is None else np.maximum(hi, p)
        vertices = self.pose(t, clip).copy()
        assert lo is not None
        assert hi is not None
        for chunk in self.static.chunks:
            first, count, _ = chunk.lods[0]
            used = self.static.indices[first : first + count]
            if used.size == 0:
                chunks.append(chunk)
                continue
            cmin, cmax = lo[used].min(axis=0), hi[used].max(axis=0)
            centre = (cmin + cmax) / 2
            radius = float(np.linalg.norm(cmax - cmin) / 2) * 1.01 + 1e-6
            center = (float(centre[0]), float(centre[1]), float(centre[2]))
            chunks.append(replace(chunk, center=center, radius=radius))
        pos = vertices[:, 0:3]
        return replace(
            self.static,
            vertices=vertices,
            chunks=chunks,
            bounds_min=pos.min(axis=0).astype(np.float64) if pos.size else self.static.bounds_min,
            bounds_max=pos.max(axis=0).astype(np.float64) if pos.size else self.static.bounds_max,
        )
