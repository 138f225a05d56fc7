"""Pixel tests of the glTF PBR features (materials, IBL, punctual lights, report), each on a
tiny scene built by code and a small viewport (fast on llvmpipe)."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from workers.rendering.demo_scene import png_bytes
from workers.rendering.environment import (
    DEFAULT_LIGHTS,
    default_environment,
    equirect_directions,
)
from workers.rendering.gltf_builder import GltfBuilder, uv_sphere, write_glb
from workers.rendering.ibl import brdf_lut, cube_directions, sample_equirect
from workers.rendering.renderer import Lighting, Pose, Renderer

W, H = 48, 32
ORIGIN = Pose((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
LEFT, RIGHT = (H // 2, W // 2 - 6), (H // 2, W // 2 + 6)
Img = npt.NDArray[np.int64]
Doc = dict[str, Any]


@pytest.fixture(scope="module")
def renderer() -> Iterator[Renderer]:
    r = Renderer(W, H)
    yield r
    r.close()


def halves(left: tuple[int, int, int, int], right: tuple[int, int, int, int]) -> bytes:
    """An 8x8 RGBA PNG: ``left`` in columns 0-3, ``right`` in 4-7 (u < 0.5 / u >= 0.5)."""
    img = np.zeros((8, 8, 4), np.uint8)
    img[:, :4] = left
    img[:, 4:] = right
    return png_bytes(img)


def quad(size: float = 1.6, z: float = -2.0) -> tuple[Any, Any, Any, Any]:
    """A square facing +Z (the camera at the origin), u left to right, v top to bottom."""
    s = size / 2
    pos = np.array([[-s, -s, z], [s, -s, z], [s, s, z], [-s, s, z]], np.float32)
    nrm = np.tile(np.array([0, 0, 1], np.float32), (4, 1))
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32)
    idx = np.array([0, 1, 2, 0, 2, 3], np.uint32)
    return pos, nrm, uv, idx


def render(
    renderer: Renderer,
    tmp_path: Path,
    build: Callable[[GltfBuilder], None],
    edit: Callable[[Doc], None] = lambda doc: None,
    *,
    name: str = "s.glb",
) -> Img:
    b = GltfBuilder()
    build(b)
    doc, bin_chunk = b.to_document_and_bin()
    edit(doc)
    write_glb(doc, bin_chunk, tmp_path / name)
    renderer.load_scene(tmp_path / name)
    return renderer.render_view(ORIGIN, fov_y_deg=60).rgb().astype(np.int64)


def textured_quad(b: GltfBuilder, png: bytes | None = None, **material: Any) -> None:
    if png is not None:
        material["base_color_texture"] = png
    mat = b.add_material(**material)
    pos, nrm, uv, idx = quad()
    b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mat))


def srgb(linear: float) -> float:
    return 12.92 * linear if linear <= 0.0031308 else 1.055 * linear ** (1 / 2.4) - 0.055


def pbr_neutral(c: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    x = c.min()
    c = c - (x - 6.25 * x * x if x < 0.08 else 0.04)
    peak = c.max()
    if peak < 0.76:
        return c
    d = 0.24
    new_peak = 1 - d * d / (peak + d - 0.76)
    c = c * new_peak / peak
    g = 1 - 1 / (0.15 * (peak - new_peak) + 1)
    return c * (1 - g) + new_peak * g


# -- the environment contract ----------------------------------------------------------------


def test_default_environment_follows_three_js_equirect_convention() -> None:
    env = default_environment(32)
    assert env.shape == (32, 64, 3)
    assert env.dtype == np.float32
    d = equirect_directions(32)
    assert d[0, 0, 1] < -0.99
    assert d[-1, 0, 1] > 0.99
    u = np.arctan2(d[..., 2], d[..., 0]) / (2 * math.pi) + 0.5
    assert np.allclose(u[5], (np.arange(64) + 0.5) / 64, atol=1e-5)
    # Brighter above than below, no hard sun.
    assert env[-4:].mean() > 2 * env[:4].mean()
    assert env.max() < 5.0
    assert DEFAULT_LIGHTS
    assert DEFAULT_LIGHTS[0].kind == "directional"


def test_cube_faces_and_brdf_lut_are_consistent() -> None:
    env = default_environment(32)
    dirs = cube_directions(4)
    assert dirs[2, :, :, 1].min() > 0.5
    assert dirs[3, :, :, 1].max() < -0.5
    up = sample_equirect(env, np.array([[0.0, 1.0, 0.0]]))[0]
    assert np.allclose(up, env[-1].mean(axis=0), rtol=0.1)
    lut = brdf_lut()
    assert lut[0, -1, 0] > 0.95  # smooth, head on: all energy in the scale term
    assert (lut.sum(axis=-1) <= 1.01).all()  # never more than it receives


# -- materials -------------------------------------------------------------------------------


def test_srgb_base_colour_texture_and_tone_mapping_match_the_formula(
    renderer: Renderer, tmp_path: Path
) -> None:
    grey = halves((128, 128, 128, 255), (128, 128, 128, 255))

    def unlit(doc: Doc) -> None:
        doc["materials"][0]["extensions"] = {"KHR_materials_unlit": {}}
        doc["extensionsUsed"] = ["KHR_materials_unlit"]

    img = render(renderer, tmp_path, lambda b: textured_quad(b, grey), unlit)
    linear = ((128 / 255 + 0.055) / 1.055) ** 2.4  # the sRGB texture decoded
    expected = 255 * srgb(float(pbr_neutral(np.full(3, linear))[0]))
    assert abs(img[H // 2, W // 2, 0] - expected) <= 2


def test_emissive_texture_shows_its_pattern_not_white(renderer: Renderer, tmp_path: Path) -> None:
    def build(b: GltfBuilder) -> None:
        textured_quad(b, base_color_factor=(0, 0, 0, 1), emissive_factor=(1, 1, 1))
        b.add_texture(halves((255, 0, 0, 255), (0, 255, 0, 255)))

    def edit(doc: Doc) -> None:
        doc["samplers"] = [{}]
        doc["materials"][0]["emissiveTexture"] = {"index": 0}

    img = render(renderer, tmp_path, build, edit)
    left, right = img[LEFT], img[RIGHT]
    assert left[0] > 200, left
    assert left[1] < 60, left
    assert right[1] > 200, right
    assert right[0] < 60, right


def test_emissive_strength_scales_the_emission(renderer: Renderer, tmp_path: Path) -> None:
    def build(b: GltfBuilder) -> None:
        textured_quad(b, base_color_factor=(0, 0, 0, 1), emissive_factor=(0.1, 0.0, 0.0))

    def strong(doc: Doc) -> None:
        doc["materials"][0]["extensions"] = {
            "KHR_materials_emissive_strength": {"emissiveStrength": 5.0}
        }

    weak = render(renderer, tmp_path, build)[H // 2, W // 2, 0]
    bright = render(renderer, tmp_path, build, strong)[H // 2, W // 2, 0]
    assert bright > weak + 60
    assert renderer.scene is not None
    assert renderer.scene.warnings == []


def test_metallic_roughness_texture_changes_the_look(renderer: Renderer, tmp_path: Path) -> None:
    def build(b: GltfBuilder) -> None:
        textured_quad(b, base_color_factor=(0.8, 0.1, 0.1, 1), metallic_factor=1.0)
        b.add_texture(halves((0, 255, 0, 255), (0, 40, 255, 255)))  # dielectric | smooth metal

    def edit(doc: Doc) -> None:
        doc["materials"][0]["pbrMetallicRoughness"]["metallicRoughnessTexture"] = {"index": 0}

    img = render(renderer, tmp_path, build, edit)
    assert np.abs(img[LEFT] - img[RIGHT]).sum() > 60, (img[LEFT], img[RIGHT])
    plain = render(renderer, tmp_path, build)  # the same factors without the texture
    assert np.abs(plain[LEFT] - plain[RIGHT]).sum() < 15


def test_occlusion_darkens(renderer: Renderer, tmp_path: Path) -> None:
    def build(b: GltfBuilder) -> None:
        textured_quad(b, base_color_factor=(0.9, 0.9, 0.9, 1))
        b.add_texture(halves((0, 0, 0, 255), (255, 255, 255, 255)))

    def edit(doc: Doc) -> None:
        doc["materials"][0]["occlusionTexture"] = {"index": 0, "strength": 1.0}

    img = render(renderer, tmp_path, build, edit)
    assert img[LEFT].sum() + 60 < img[RIGHT].sum(), (img[LEFT], img[RIGHT])


def test_texture_transform_moves_the_pattern(renderer: Renderer, tmp_path: Path) -> None:
    red_green = halves((255, 0, 0, 255), (0, 255, 0, 255))

    def offset(doc: Doc) -> None:
        unlit(doc)
        doc["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]["extensions"] = {
            "KHR_texture_transform": {"offset": [0.5, 0.0]}
        }
        doc["extensionsUsed"] = ["KHR_texture_transform"]

    def unlit(doc: Doc) -> None:
        doc["materials"][0]["extensions"] = {"KHR_materials_unlit": {}}

    plain = render(renderer, tmp_path, lambda b: textured_quad(b, red_green), unlit)
    moved = render(renderer, tmp_path, lambda b: textured_quad(b, red_green), offset)
    assert plain[LEFT][0] > 150 > plain[LEFT][1]  # red on the left as authored
    assert moved[LEFT][1] > 150 > moved[LEFT][0]  # shifted by half: green on the left


def test_texcoord_1_is_used(renderer: Renderer, tmp_path: Path) -> None:
    def build(b: GltfBuilder) -> None:
        mat = b.add_material(base_color_texture=halves((255, 0, 0, 255), (0, 255, 0, 255)))
        pos, nrm, uv, idx = quad()
        mesh = b.add_mesh(pos, normals=nrm, uvs=np.zeros_like(uv), indices=idx, material=mat)
        b.add_accessor(uv)  # TEXCOORD_1, the last accessor
        b.add_node(mesh=mesh)

    def edit(doc: Doc) -> None:
        doc["meshes"][0]["primitives"][0]["attributes"]["TEXCOORD_1"] = len(doc["accessors"]) - 1
        doc["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]["texCoord"] = 1

    img = render(renderer, tmp_path, build, edit)
    assert img[LEFT][0] > img[LEFT][1] + 60  # red from UV set 1, not the constant UV 0
    assert img[RIGHT][1] > img[RIGHT][0] + 60


def test_vertex_colours_tint_the_base_colour(renderer: Renderer, tmp_path: Path) -> None:
    def build(b: GltfBuilder) -> None:
        textured_quad(b)
        b.add_accessor(np.tile(np.array([0.0, 0.0, 1.0, 1.0], np.float32), (4, 1)))

    def edit(doc: Doc) -> None:
        doc["meshes"][0]["primitives"][0]["attributes"]["COLOR_0"] = len(doc["accessors"]) - 1

    px = render(renderer, tmp_path, build, edit)[H // 2, W // 2]
    assert px[2] > px[0] + 80, px
    assert px[2] > px[1] + 80, px


def test_unlit_ignores_lights(renderer: Renderer, tmp_path: Path) -> None:
    def build(b: GltfBuilder) -> None:
        textured_quad(b, base_color_factor=(0.3, 0.3, 0.3, 1))

    def unlit(doc: Doc) -> None:
        doc["materials"][0]["extensions"] = {"KHR_materials_unlit": {}}

    def unlit_and_lamp(doc: Doc) -> None:
        unlit(doc)
        point_light(doc, (0.0, 0.0, -1.5), 50.0)

    lit = render(renderer, tmp_path, build)[H // 2, W // 2]
    flat = render(renderer, tmp_path, build, unlit)[H // 2, W // 2]
    lamp = render(renderer, tmp_path, build, unlit_and_lamp)[H // 2, W // 2]
    assert np.array_equal(flat, lamp)
    assert abs(int(flat[0]) - int(lit[0])) > 10  # and differs from the lit material


def test_mask_discards_below_the_cutoff(renderer: Renderer, tmp_path: Path) -> None:
    png = halves((255, 0, 0, 0), (255, 0, 0, 255))
    img = render(renderer, tmp_path, lambda b: textured_quad(b, png, alpha_mode="MASK"))
    background = np.array([15, 18, 26])
    assert np.abs(img[LEFT] - background).max() <= 2
    assert img[RIGHT][0] > 100


def test_blend_shows_what_is_behind(renderer: Renderer, tmp_path: Path) -> None:
    def build(b: GltfBuilder) -> None:
        back = b.add_material(base_color_factor=(1, 0, 0, 1))
        front = b.add_material(base_color_factor=(0, 0, 1, 0.5), alpha_mode="BLEND")
        pos, nrm, uv, idx = quad(z=-3.0, size=3.0)
        b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=back))
        pos, nrm, uv, idx = quad(z=-2.0)
        b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=front))

    px = render(renderer, tmp_path, build)[H // 2, W // 2]
    assert px[0] > 60, px  # red through the half-transparent blue
    assert px[2] > 60, px


def test_single_sided_back_faces_are_culled_double_sided_are_not(
    renderer: Renderer, tmp_path: Path
) -> None:
    def build(double: bool) -> Callable[[GltfBuilder], None]:
        def inner(b: GltfBuilder) -> None:
            mat = b.add_material(base_color_factor=(1, 1, 1, 1), double_sided=double)
            pos, nrm, uv, idx = quad()
            back = idx.reshape(-1, 3)[:, ::-1].reshape(-1)  # facing away from the camera
            b.add_node(mesh=b.add_mesh(pos, normals=-nrm, uvs=uv, indices=back, material=mat))

        return inner

    single = render(renderer, tmp_path, build(False))[H // 2, W // 2]
    double = render(renderer, tmp_path, build(True))[H // 2, W // 2]
    assert np.abs(single - np.array([15, 18, 26])).max() <= 2
    assert double.sum() > 300


# -- lighting --------------------------------------------------------------------------------


def test_metal_sphere_reflects_the_environment(renderer: Renderer, tmp_path: Path) -> None:
    def build(b: GltfBuilder) -> None:
        mat = b.add_material(
            base_color_factor=(1, 1, 1, 1), metallic_factor=1.0, roughness_factor=0.05
        )
        pos, nrm, uv, idx = uv_sphere(0.8, 32, 16)
        b.add_node(
            mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mat),
            translation=(0, 0, -2.2),
        )

    img = render(renderer, tmp_path, build)
    top, bottom = img[H // 2 - 8, W // 2], img[H // 2 + 8, W // 2]
    assert top.sum() > 300, top  # bright sky, not black
    assert top.sum() > bottom.sum() + 60, (top, bottom)  # the dark ground below


def point_light(doc: Doc, position: tuple[float, float, float], intensity: float) -> None:
    doc.setdefault("extensions", {})["KHR_lights_punctual"] = {
        "lights": [{"type": "point", "intensity": intensity, "color": [1, 1, 1]}]
    }
    doc.setdefault("extensionsUsed", []).append("KHR_lights_punctual")
    doc["nodes"].append(
        {"translation": list(position), "extensions": {"KHR_lights_punctual": {"light": 0}}}
    )
    doc["scenes"][0]["nodes"].append(len(doc["nodes"]) - 1)


def test_point_light_lights_the_near_side(tmp_path: Path) -> None:
    with Renderer(W, H, lighting=Lighting(environment_intensity=0.0)) as dark:
        img = render(
            dark,
            tmp_path,
            lambda b: textured_quad(b, base_color_factor=(0.8, 0.8, 0.8, 1)),
            lambda doc: point_light(doc, (-0.7, 0.0, -1.7), 1.0),
        )
        assert dark.scene is not None
        assert dark.scene.lights is not None
    assert img[LEFT].sum() > img[RIGHT].sum() + 60, (img[LEFT], img[RIGHT])


def test_spot_light_cone_cuts_off(tmp_path: Path) -> None:
    def spot(doc: Doc) -> None:
        doc["extensions"] = {
            "KHR_lights_punctual": {
                "lights": [{"type": "spot", "intensity": 3.0, "spot": {"outerConeAngle": 0.15}}]
            }
        }
        doc["extensionsUsed"] = ["KHR_lights_punctual"]
        doc["nodes"].append(  # at the camera, shining down -Z onto the quad's centre
            {"translation": [0, 0, 0], "extensions": {"KHR_lights_punctual": {"light": 0}}}
        )
        doc["scenes"][0]["nodes"].append(len(doc["nodes"]) - 1)

    with Renderer(W, H, lighting=Lighting(environment_intensity=0.0)) as dark:
        img = render(dark, tmp_path, lambda b: textured_quad(b), spot)
    assert img[H // 2, W // 2].sum() > 150
    assert img[H // 2, W // 2 - 12].sum() < 60


# -- the report ------------------------------------------------------------------------------


def test_unsupported_extensions_and_undecoded_textures_are_named(
    renderer: Renderer, tmp_path: Path
) -> None:
    def build(b: GltfBuilder) -> None:
        textured_quad(b, base_color_factor=(0, 0, 0, 1), emissive_factor=(1, 1, 1))
        header = b"\xabKTX 20\xbb\r\n\x1a\n" + struct.pack("<IIIIIII", 0, 1, 8, 8, 0, 0, 1)
        b.add_image(header + bytes(20), mime_type="image/ktx2")

    def edit(doc: Doc) -> None:
        doc["extensionsUsed"] = ["KHR_materials_clearcoat", "KHR_texture_basisu"]
        doc["materials"][0]["extensions"] = {"KHR_materials_clearcoat": {"clearcoatFactor": 1}}
        doc["textures"] = [{"extensions": {"KHR_texture_basisu": {"source": 0}}}]
        doc["materials"][0]["emissiveTexture"] = {"index": 0}

    img = render(renderer, tmp_path, build, edit)
    scene = renderer.scene
    assert scene is not None
    named = {(w.code, w.feature) for w in scene.warnings}
    assert ("render_unsupported_extension", "KHR_materials_clearcoat") in named
    assert ("render_texture_not_decoded", "texture 0") in named
    # The emissive factor without its texture is not painted over the whole surface.
    assert img[H // 2, W // 2].sum() < 200
