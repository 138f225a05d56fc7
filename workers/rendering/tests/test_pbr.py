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

from workers.rendering.camera import CameraPose
from workers.rendering.demo_scene import png_bytes
from workers.rendering.environment import (
    DEFAULT_LIGHTS,
    default_environment,
    equirect_directions,
)
from workers.rendering.gltf_builder import (
    MIRRORED_REPEAT,
    REPEAT,
    GltfBuilder,
    uv_sphere,
    write_glb,
)
from workers.rendering.ibl import (
    PreparedEnvironment,
    brdf_lut,
    cube_directions,
    eval_irradiance_sh,
    irradiance_cube,
    irradiance_sh,
    sample_equirect,
    specular_cube,
)
from workers.rendering.renderer import Lighting, Renderer

W, H = 48, 32
ORIGIN = CameraPose((0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
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


def add_sphere(b: GltfBuilder, material: int) -> None:
    """The material tests' subject: a smooth sphere filling the middle of the view."""
    pos, nrm, uv, idx = uv_sphere(0.8, 32, 16)
    b.add_node(
        mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=material),
        translation=(0, 0, -2.2),
    )


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


def test_sh_irradiance_matches_the_exact_convolution() -> None:
    env = default_environment(64)
    exact = irradiance_cube(env)
    approx = eval_irradiance_sh(irradiance_sh(env), cube_directions(exact.shape[1]))
    assert (np.abs(approx - exact) / exact).max() < 0.06  # order-2 SH: within about 3%
    assert exact[2].mean() > 2 * exact[3].mean()  # lit from above more than from the ground


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


def test_specular_factor_zero_removes_the_dielectric_highlight(
    renderer: Renderer, tmp_path: Path
) -> None:
    def build(b: GltfBuilder) -> None:
        mat = b.add_material(base_color_factor=(0.0, 0.0, 0.0, 1), roughness_factor=0.05)
        add_sphere(b, mat)

    def no_specular(doc: Doc) -> None:
        doc["extensionsUsed"] = ["KHR_materials_specular"]
        doc["materials"][0]["extensions"] = {"KHR_materials_specular": {"specularFactor": 0.0}}

    glossy = render(renderer, tmp_path, build)
    matte = render(renderer, tmp_path, build, no_specular)
    assert renderer.scene is not None
    assert renderer.scene.warnings == []
    sphere = np.abs(glossy - np.array([15, 18, 26])).sum(axis=-1) > 6  # where the sphere is
    assert glossy[sphere].sum(axis=-1).max() > 150  # a black glossy ball still reflects
    assert matte[sphere].sum(axis=-1).max() < 30  # with specular 0 it is black


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


TILT = math.radians(35)


@pytest.mark.parametrize(
    ("case", "tilt"),
    [
        # (how the tile is laid out, the normal map's tangent-space direction)
        ("plain", (1.0, 0.0)),  # +u (image right) is world +x
        ("plain", (0.0, 1.0)),  # image up (-v) is world +y
        ("mirrored_u", (1.0, 0.0)),  # u runs right to left: +u is world -x
        ("back_face", (1.0, 0.0)),  # a double-sided tile seen from behind
    ],
)
def test_normal_map_tilts_like_the_equivalent_geometry(
    renderer: Renderer, tmp_path: Path, case: str, tilt: tuple[float, float]
) -> None:
    """A constant normal map on a flat tile lights like the same tile whose vertex normals are
    the perturbed normal (the glTF convention: red along +u, green up the image, i.e. -v), and
    unlike the opposite tilt. A wrong-signed tangent frame fails one of the cases."""
    sin, cos = math.sin(TILT), math.cos(TILT)
    m = (tilt[0] * sin, tilt[1] * sin, cos)
    pos, _, uv, idx = quad()
    face = np.array([0.0, 0.0, 1.0])
    tangent, bitangent = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])  # +u, -v
    if case == "mirrored_u":
        uv = np.ascontiguousarray(np.stack([1.0 - uv[:, 0], uv[:, 1]], 1), np.float32)
        tangent = -tangent
    elif case == "back_face":
        idx = idx.reshape(-1, 3)[:, ::-1].ravel().copy()  # wound to face away (-Z)
        face = -face
    texel = np.array([[[(c * 0.5 + 0.5) * 255 for c in m] + [255]]], np.float64)
    normal_png = png_bytes(np.tile(texel, (4, 4, 1)).round().astype(np.uint8))
    perturbed = m[0] * tangent + m[1] * bitangent + m[2] * face  # the front side's normal
    opposite = -m[0] * tangent - m[1] * bitangent + m[2] * face

    def tile(**kw: Any) -> Callable[[GltfBuilder], None]:
        def build(b: GltfBuilder) -> None:
            normals = np.tile(np.asarray(kw.pop("normal", face), np.float32), (4, 1))
            mat = b.add_material(base_color_factor=(0.8, 0.8, 0.8, 1), double_sided=True, **kw)
            mesh = b.add_mesh(pos, normals=normals, uvs=uv, indices=idx, material=mat)
            b.add_node(mesh=mesh)

        return build

    mapped = render(renderer, tmp_path, tile(normal_texture=normal_png))
    same = render(renderer, tmp_path, tile(normal=perturbed), name="g.glb")
    other = render(renderer, tmp_path, tile(normal=opposite), name="o.glb")
    inside = (slice(H // 2 - 8, H // 2 + 8), slice(W // 2 - 8, W // 2 + 8))
    err = np.abs(mapped[inside] - same[inside]).mean()
    contrast = np.abs(other[inside] - same[inside]).mean()
    assert contrast > 12, contrast  # the test can tell the two tilts apart
    assert err < contrast / 6, (err, contrast)


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


def test_mirrored_repeat_mirrors(renderer: Renderer, tmp_path: Path) -> None:
    def build(mirror: bool) -> Callable[[GltfBuilder], None]:
        def inner(b: GltfBuilder) -> None:
            sampler = b.add_sampler(wrap_s=MIRRORED_REPEAT if mirror else REPEAT)
            tex = b.add_texture(halves((255, 0, 0, 255), (0, 255, 0, 255)), sampler=sampler)
            mat = b.add_material(base_color_texture=tex)
            pos, nrm, uv, idx = quad()
            uv2 = uv * np.array([2.0, 1.0], np.float32)  # u from 0 to 2 across the quad
            b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv2, indices=idx, material=mat))

        return inner

    at = (H // 2, 28)  # u about 1.4: REPEAT samples 0.4 (red), MIRRORED_REPEAT 0.6 (green)
    repeat = render(renderer, tmp_path, build(False))[at]
    mirrored = render(renderer, tmp_path, build(True))[at]
    assert repeat[0] > repeat[1] + 60, repeat
    assert mirrored[1] > mirrored[0] + 60, mirrored
    assert renderer.scene is not None
    assert renderer.scene.warnings == []


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
        add_sphere(b, mat)

    img = render(renderer, tmp_path, build)
    top, bottom = img[H // 2 - 8, W // 2], img[H // 2 + 8, W // 2]
    assert top.sum() > 300, top  # bright sky, not black
    assert top.sum() > bottom.sum() + 60, (top, bottom)  # the dark ground below


@pytest.mark.parametrize("metal", [1.0, 0.0])
@pytest.mark.parametrize("rough", [1.0, 0.6, 0.2])
def test_white_furnace_rough_metal_keeps_its_energy(
    tmp_path: Path, metal: float, rough: float
) -> None:
    """A white material in a uniform environment (no punctual lights) reflects exactly the
    environment's radiance, at any roughness: the multiple-scattering term gives back what the
    single-scattering lobe loses (without it, rough metal renders at about half), and a
    dielectric's diffuse gives up what its specular reflects (without that, it is brighter)."""
    radiance = 0.5
    env = np.full((16, 32, 3), radiance, np.float32)
    uniform = PreparedEnvironment(
        specular=specular_cube(env), irradiance=irradiance_sh(env), lut=brdf_lut()
    )
    with Renderer(W, H, lighting=Lighting(lights=()), environment=uniform) as furnace:
        img = render(
            furnace,
            tmp_path,
            lambda b: textured_quad(
                b, base_color_factor=(1, 1, 1, 1), metallic_factor=metal, roughness_factor=rough
            ),
        )
    expected = 255 * srgb(float(pbr_neutral(np.full(3, radiance))[0]))
    centre = img[H // 2 - 4 : H // 2 + 4, W // 2 - 4 : W // 2 + 4, 0]
    assert np.abs(centre - expected).max() <= 2, (centre.min(), centre.max(), expected)


def test_clearcoat_adds_a_sharp_reflection_over_a_rough_base(
    renderer: Renderer, tmp_path: Path
) -> None:
    def build(b: GltfBuilder) -> None:
        mat = b.add_material(base_color_factor=(0.5, 0.05, 0.05, 1), roughness_factor=1.0)
        add_sphere(b, mat)

    def coat(doc: Doc) -> None:
        doc["extensionsUsed"] = ["KHR_materials_clearcoat"]
        doc["materials"][0]["extensions"] = {
            "KHR_materials_clearcoat": {"clearcoatFactor": 1.0, "clearcoatRoughnessFactor": 0.0}
        }

    plain = render(renderer, tmp_path, build)
    coated = render(renderer, tmp_path, build, coat)
    assert renderer.scene is not None
    assert renderer.scene.warnings == []
    diff = np.abs(coated - plain).sum(axis=-1)
    assert diff.max() > 40  # the rim reflects the studio
    assert (coated.sum(axis=-1) >= plain.sum(axis=-1) - 6).mean() > 0.9


def test_transmission_is_see_through_and_named_approximated(
    renderer: Renderer, tmp_path: Path
) -> None:
    def build(b: GltfBuilder) -> None:
        back = b.add_material(base_color_factor=(1, 0, 0, 1))
        glass = b.add_material(base_color_factor=(1, 1, 1, 1), roughness_factor=0.1)
        pos, nrm, uv, idx = quad(z=-3.0, size=3.0)
        b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=back))
        pos, nrm, uv, idx = quad(z=-2.0)
        b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=glass))

    def glass(doc: Doc) -> None:
        doc["extensionsUsed"] = ["KHR_materials_transmission"]
        doc["materials"][1]["extensions"] = {
            "KHR_materials_transmission": {"transmissionFactor": 1.0}
        }

    opaque = render(renderer, tmp_path, build)[H // 2, W // 2]
    px = render(renderer, tmp_path, build, glass)[H // 2, W // 2]
    assert opaque[0] - opaque[1] < 30, opaque  # the white pane hides the red
    assert px[0] > px[1] + 60, px  # the red wall shows through the glass
    assert renderer.scene is not None
    assert [(w.code, w.feature) for w in renderer.scene.warnings] == [
        ("render_approximated", "KHR_materials_transmission")
    ]


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


def test_the_next_scene_gets_its_own_lights_not_the_previous_ones(tmp_path: Path) -> None:
    def grey(b: GltfBuilder) -> None:
        textured_quad(b, base_color_factor=(0.8, 0.8, 0.8, 1))

    with Renderer(W, H, lighting=Lighting(environment_intensity=0.0)) as dark:
        render(dark, tmp_path, grey, lambda doc: point_light(doc, (-0.7, 0.0, -1.7), 1.0))
        img = render(
            dark, tmp_path, grey, lambda doc: point_light(doc, (0.7, 0.0, -1.7), 1.0), name="b.glb"
        )
    assert img[RIGHT].sum() > img[LEFT].sum() + 60, (img[LEFT], img[RIGHT])


@pytest.mark.parametrize(
    "light",
    [{"type": "laser"}, {"type": "spot", "spot": "wide"}, {"type": "point", "color": [1, 2]}],
)
def test_broken_lights_are_named_not_fatal(
    renderer: Renderer, tmp_path: Path, light: dict[str, Any]
) -> None:
    def edit(doc: Doc) -> None:
        point_light(doc, (0.0, 0.0, -1.0), 1.0)
        doc["extensions"]["KHR_lights_punctual"]["lights"][0] = light
        doc["nodes"].append({"extensions": {"KHR_lights_punctual": {"light": "x"}}})
        doc["scenes"][0]["nodes"].append(len(doc["nodes"]) - 1)

    img = render(renderer, tmp_path, lambda b: textured_quad(b), edit)
    assert renderer.scene is not None
    assert {w.code for w in renderer.scene.warnings} == {"render_light_invalid"}
    assert renderer.scene.lights is None  # the default lights, then
    assert img[H // 2, W // 2].sum() > 300


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
        doc["extensionsUsed"] = ["KHR_materials_sheen", "KHR_texture_basisu"]
        doc["materials"][0]["extensions"] = {"KHR_materials_sheen": {"sheenColorFactor": [1, 1, 1]}}
        doc["textures"] = [{"extensions": {"KHR_texture_basisu": {"source": 0}}}]
        doc["materials"][0]["emissiveTexture"] = {"index": 0}

    img = render(renderer, tmp_path, build, edit)
    scene = renderer.scene
    assert scene is not None
    named = {(w.code, w.feature) for w in scene.warnings}
    pointers = {w.feature: w.pointer for w in scene.warnings}
    assert pointers == {"KHR_materials_sheen": "/extensionsUsed/0", "texture 0": "/textures/0"}
    assert ("render_unsupported_extension", "KHR_materials_sheen") in named
    assert ("render_texture_not_decoded", "texture 0") in named
    # The emissive factor without its texture is not painted over the whole surface.
    assert img[H // 2, W // 2].sum() < 200


def test_avatars_are_drawn_before_any_scene_is_loaded() -> None:
    from workers.rendering.renderer import Avatar

    with Renderer(W, H) as fresh:
        img = fresh.render_view(
            ORIGIN, fov_y_deg=60, avatars=[Avatar((0, 0, -2), color=(0, 1, 0), kind="box")]
        ).rgb()
    assert img[H // 2, W // 2, 1] > 120
