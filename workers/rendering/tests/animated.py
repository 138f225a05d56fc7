"""Small animated glTF scenes with poses known in closed form (node TRS, morph target, skin).

Each ``make_*`` writes ``root/<name>.glb`` and returns its path. All three loop over 2 s.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from workers.rendering.gltf_builder import UNSIGNED_SHORT, GltfBuilder, box, write_glb

DURATION = 2.0


def _animation(path: str, node: int, times: int, values: int) -> dict[str, Any]:
    return {
        "samplers": [{"input": times, "output": values, "interpolation": "LINEAR"}],
        "channels": [{"sampler": 0, "target": {"node": node, "path": path}}],
    }


def _write(root: Path, name: str, doc: dict[str, Any], bin_chunk: bytes) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"{name}.glb"
    write_glb(doc, bin_chunk, path)
    return path


def make_slider(root: Path) -> Path:
    """A red box whose node slides x = -0.6 → 0.6 → -0.6 (t = 0, 1, 2); its rest x is 0, so
    the first frame differs from the rest pose. A grey floor box stays put."""
    b = GltfBuilder()
    red = b.add_material(base_color_factor=(0.9, 0.1, 0.1, 1.0))
    grey = b.add_material(base_color_factor=(0.6, 0.6, 0.6, 1.0))
    pos, nrm, uv, idx = box((0.5, 0.5, 0.5))
    mover = b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=red)
    f_pos, f_nrm, f_uv, f_idx = box((2.0, 0.1, 1.0))
    floor = b.add_mesh(f_pos, normals=f_nrm, uvs=f_uv, indices=f_idx, material=grey)
    b.add_node(mesh=mover, translation=(0.0, 0.0, 0.0), name="slider")
    b.add_node(mesh=floor, translation=(0.0, -0.4, 0.0), name="floor")
    times = b.add_accessor(np.array([0.0, 1.0, 2.0]), target=None)
    values = b.add_accessor(
        np.array([[-0.6, 0, 0], [0.6, 0, 0], [-0.6, 0, 0]], np.float32),
        target=None,
        with_bounds=False,
    )
    doc, bin_chunk = b.to_document_and_bin()
    doc["animations"] = [_animation("translation", 0, times, values)]
    return _write(root, "slider", doc, bin_chunk)


def make_morph(root: Path) -> Path:
    """A unit quad in z = 0 whose top edge rises by 1 at t = 1 (weights 0 → 1 → 0)."""
    b = GltfBuilder()
    pos = np.array([[-0.5, -0.5, 0], [0.5, -0.5, 0], [0.5, 0.5, 0], [-0.5, 0.5, 0]], np.float32)
    nrm = np.tile(np.array([0, 0, 1], np.float32), (4, 1))
    mesh = b.add_mesh(pos, normals=nrm, indices=np.array([0, 1, 2, 0, 2, 3]))
    delta = np.array([[0, 0, 0], [0, 0, 0], [0, 1, 0], [0, 1, 0]], np.float32)
    target = b.add_accessor(delta)
    b.add_node(mesh=mesh, name="quad")
    times = b.add_accessor(np.array([0.0, 1.0, 2.0]), target=None)
    weights = b.add_accessor(np.array([0.0, 1.0, 0.0]), target=None, with_bounds=False)
    doc, bin_chunk = b.to_document_and_bin()
    doc["meshes"][0]["primitives"][0]["targets"] = [{"POSITION": target}]
    doc["meshes"][0]["weights"] = [0.0]
    doc["animations"] = [_animation("weights", 0, times, weights)]
    return _write(root, "morph", doc, bin_chunk)


def make_skinned(root: Path) -> Path:
    """A bar from y = 0 to 2 on two joints (the second at y = 1); the second joint turns 90°
    about z at t = 1, so the bar's tip (0, 2, 0) goes to (-1, 1, 0)."""
    b = GltfBuilder()
    ys = np.array([0.0, 1.0, 2.0])
    pos = np.array([[x, y, 0.0] for y in ys for x in (-0.1, 0.1)], np.float32)
    nrm = np.tile(np.array([0, 0, 1], np.float32), (pos.shape[0], 1))
    idx = np.array([0, 1, 3, 0, 3, 2, 2, 3, 5, 2, 5, 4])
    mesh = b.add_mesh(pos, normals=nrm, indices=idx)
    joints = np.zeros((pos.shape[0], 4), np.uint16)
    joints[:, 0] = [0, 0, 1, 1, 1, 1]
    weights = np.zeros((pos.shape[0], 4), np.float32)
    weights[:, 0] = 1.0
    j_acc = b.add_accessor(joints, component_type=UNSIGNED_SHORT, with_bounds=False)
    w_acc = b.add_accessor(weights, with_bounds=False)
    ibm = np.stack([np.eye(4), np.eye(4)])
    ibm[1, 1, 3] = -1.0  # inverse of the second joint's bind transform (translate y by 1)
    ibm_acc = b.add_accessor(ibm.transpose(0, 2, 1).reshape(2, 16), target=None, with_bounds=False)
    b.add_node(mesh=mesh, name="bar")
    j0 = b.add_node(name="root_joint")
    b.add_node(parent=j0, translation=(0.0, 1.0, 0.0), name="elbow")
    times = b.add_accessor(np.array([0.0, 1.0, 2.0]), target=None)
    s = math.sin(math.pi / 4)
    rot = np.array([[0, 0, 0, 1], [0, 0, s, s], [0, 0, 0, 1]], np.float32)
    rot_acc = b.add_accessor(rot, target=None, with_bounds=False)
    doc, bin_chunk = b.to_document_and_bin()
    prim = doc["meshes"][0]["primitives"][0]
    prim["attributes"]["JOINTS_0"] = j_acc
    prim["attributes"]["WEIGHTS_0"] = w_acc
    doc["skins"] = [{"joints": [1, 2], "inverseBindMatrices": ibm_acc, "skeleton": 1}]
    doc["nodes"][0]["skin"] = 0
    doc["animations"] = [_animation("rotation", 2, times, rot_acc)]
    return _write(root, "skinned", doc, bin_chunk)


TWO_CLIPS = {"Slide": 2.0, "Bob": 0.5}  # name -> duration, in file order


def make_two_clips(root: Path, *, camera: bool = False, root_scale: float = 1.0) -> Path:
    """Fox-like: two clips of different lengths moving different nodes. "Slide" (2 s) moves a
    red box (node 0, rest x = 0) along x as :func:`make_slider` does; "Bob" (0.5 s) lifts a blue
    box (node 1, rest (1.5, 0, 0)) to y = 1 at t = 0.25 and back. With ``camera``, a third
    node "Front" holds a camera at (0.75, 0.5, 6) looking down -Z. With ``root_scale`` 100, all
    of it hangs under a node scaled by 100: a scene authored in centimetres, as Fox is."""
    b = GltfBuilder()
    red = b.add_material(base_color_factor=(0.9, 0.1, 0.1, 1.0))
    blue = b.add_material(base_color_factor=(0.1, 0.2, 0.9, 1.0))
    pos, nrm, uv, idx = box((0.5, 0.5, 0.5))
    slider = b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=red)
    bobber = b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=blue)
    b.add_node(mesh=slider, name="slider")
    b.add_node(mesh=bobber, translation=(1.5, 0.0, 0.0), name="bobber")
    slide_t = b.add_accessor(np.array([0.0, 1.0, 2.0]), target=None)
    slide_v = b.add_accessor(
        np.array([[-0.6, 0, 0], [0.6, 0, 0], [-0.6, 0, 0]], np.float32),
        target=None,
        with_bounds=False,
    )
    bob_t = b.add_accessor(np.array([0.0, 0.25, 0.5]), target=None)
    bob_v = b.add_accessor(
        np.array([[1.5, 0, 0], [1.5, 1, 0], [1.5, 0, 0]], np.float32),
        target=None,
        with_bounds=False,
    )
    doc, bin_chunk = b.to_document_and_bin()
    doc["animations"] = [
        {**_animation("translation", 0, slide_t, slide_v), "name": "Slide"},
        {**_animation("translation", 1, bob_t, bob_v), "name": "Bob"},
    ]
    if camera:
        doc["cameras"] = [{"type": "perspective", "perspective": {"yfov": 1.0, "znear": 0.05}}]
        doc["nodes"].append({"name": "Front", "camera": 0, "translation": [0.75, 0.5, 6.0]})
        doc["scenes"][0]["nodes"].append(len(doc["nodes"]) - 1)
    if root_scale != 1.0:
        children = list(doc["scenes"][0]["nodes"])
        doc["nodes"].append({"name": "units", "scale": [root_scale] * 3, "children": children})
        doc["scenes"][0]["nodes"] = [len(doc["nodes"]) - 1]
    return _write(root, "two_clips", doc, bin_chunk)
