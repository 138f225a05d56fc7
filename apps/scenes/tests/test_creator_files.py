"""Creators' files as their tools export them, through the real upload API and processing: an OBJ
with its .mtl and textures in a zip, an FBX with its textures in a zip (Windows-style paths,
other letter case, other folders), converted with the textures inside the render-ready GLB.
The files are made here by assimp from a generated reference scene."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from apps.scenes import selectors
from apps.scenes.models import SceneVersion
from apps.scenes.tests import formats
from apps.scenes.validation.report import EXAMPLES_PER_CODE, KHRONOS_ERROR_HINT
from workers.rendering.gltf_package import load_package
from workers.rendering.renderer import thumbnail

pytestmark = pytest.mark.django_db

# Mean absolute difference (0..255) of thumbnails: a zip that keeps its texture renders like
# the reference (~0.2); without the texture it is ~8 (test_formats.SAME_PICTURE's reasoning).
SAME_PICTURE = 2.0


def _exported(root: Path, fmt: str, name: str) -> Path:
    """The reference scene exported by assimp; its texture is the file ``ref_img0.png``."""
    root.mkdir(parents=True, exist_ok=True)
    formats.reference_builder().write_gltf(root / "ref.gltf")
    return formats.assimp_export(root / "ref.gltf", root / name, fmt)


def _obj_zip(root: Path, *, with_texture: bool = True) -> Path:
    obj = _exported(root, "obj", "scene.obj")
    # As a Windows tool writes it: `.\` and another letter case than the file in the zip.
    mtl = (root / "scene.mtl").read_text().replace("map_Kd ref_img0.png", "map_Kd .\\REF_IMG0.PNG")
    path = root / "obj.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(obj, "My Model/scene.obj")
        zf.writestr("My Model/Scene.MTL", mtl)  # `mtllib scene.mtl` in the OBJ
        if with_texture:
            zf.write(root / "ref_img0.png", "My Model/ref_img0.png")
    return path


def _fbx_zip(root: Path) -> Path:
    fbx = _exported(root, "fbxa", "scene.fbx")
    path = root / "fbx.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(fbx, "scene.fbx")
        zf.write(root / "ref_img0.png", "Textures/Ref_Img0.png")  # another folder and case
    return path


def _upload(client: Any, upload: Any, path: Path) -> SceneVersion:
    response = upload(client, path, name=path.stem)
    assert response.status_code == 201, response.json()
    return SceneVersion.objects.get(pk=response.json()["version"]["id"])


@pytest.mark.parametrize(
    ("make", "kind"), [(_obj_zip, "OBJ"), (_fbx_zip, "FBX")], ids=["obj", "fbx"]
)
def test_a_zip_of_a_model_and_its_textures_converts_with_them(
    make: Any, kind: str, make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    version = _upload(bearer_client(make_user("creator")), upload, make(tmp_path / "src"))
    assert version.status == "ready", version.report
    assert version.container == "zip"
    assert version.report["processing"]["converted_from"]["from"] == kind
    assert version.triangles == formats.REFERENCE_TRIANGLES
    embedded = [i for i in version.report["issues"] if i["code"] == "texture_embedded"]
    assert [i["pointer"] for i in embedded] == ["/images/0"], version.report["issues"]
    # The texture is inside the file workers load, not a path to somewhere else.
    served = load_package(selectors.scene_version_file_path(version))
    image = served.document["images"][0]
    assert "uri" not in image
    assert image["mimeType"] == "image/png"
    assert served.image_bytes(0) == (tmp_path / "src" / "ref_img0.png").read_bytes()
    # And it renders like the reference scene, texture included.
    reference = thumbnail(load_package(formats.make_reference(tmp_path / "ref")), size=(512, 288))
    difference = formats.picture_difference(reference, version.thumbnail.open("rb").read())
    assert difference < SAME_PICTURE, difference


def test_a_texture_missing_from_the_zip_is_a_named_warning(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    path = _obj_zip(tmp_path / "src", with_texture=False)
    version = _upload(bearer_client(make_user("creator")), upload, path)
    assert version.status == "ready", version.report
    missing = [i for i in version.report["issues"] if i["code"] == "texture_missing"]
    assert len(missing) == 1
    assert missing[0]["severity"] == "warning"
    assert missing[0]["pointer"] == "/images/0"
    assert "'.\\REF_IMG0.PNG', which is not in the zip" in missing[0]["message"]


def test_a_zip_of_two_models_is_refused_in_plain_words(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    obj = _exported(tmp_path / "src", "obj", "scene.obj")
    path = tmp_path / "two.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(obj, "a.obj")
        zf.write(obj, "b/b.OBJ")
    version = _upload(bearer_client(make_user("creator")), upload, path)
    assert version.status == "rejected"
    error = version.report["issues"][0]
    assert error["code"] == "zip_multiple_scenes"
    assert "a.obj" in error["message"]
    assert "its own zip" in error["message"]


# ------------------------------------------------------------------ reports a creator can read


def many_bad_bounds(root: Path, meshes: int = 40) -> Path:
    """``meshes`` boxes whose POSITION max is wrong: the validator reports each accessor."""
    from workers.rendering.gltf_builder import GltfBuilder, box, glb_bytes

    b = GltfBuilder()
    pos, nrm, _uv, idx = box()
    for k in range(meshes):
        b.add_node(mesh=b.add_mesh(pos, normals=nrm, indices=idx), translation=(k, 0, 0))
    doc, bin_chunk = b.to_document_and_bin()
    for accessor in doc["accessors"]:
        if accessor.get("type") == "VEC3" and "max" in accessor:
            accessor["max"] = [v * 0.5 for v in accessor["max"]]
    root.mkdir(parents=True, exist_ok=True)
    path = root / "bad-bounds.glb"
    path.write_bytes(glb_bytes(doc, bin_chunk))
    return path


def test_repeated_issues_are_grouped_by_code_with_a_count_and_what_to_do(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    version = _upload(bearer_client(make_user("creator")), upload, many_bad_bounds(tmp_path))
    assert version.status == "rejected"
    report = version.report
    groups = {g["code"]: g for g in report["issue_groups"]}
    group = groups["ACCESSOR_MAX_MISMATCH"]
    assert group["count"] >= 40  # one per mesh's POSITION (and NORMAL) accessor
    assert group["severity"] == "error"
    assert group["hint"] == KHRONOS_ERROR_HINT
    assert group["examples"][0] == "/accessors/0/max/0"
    kept = [i for i in report["issues"] if i["code"] == "ACCESSOR_MAX_MISMATCH"]
    assert len(kept) == EXAMPLES_PER_CODE  # the stored report is not 200 lines long
    assert len(report["issues"]) <= EXAMPLES_PER_CODE * len(groups)


def test_an_html_page_uploaded_as_glb_is_named_for_what_it_is(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    path = tmp_path / "model.glb"
    path.write_text("\n\n\n\n<!DOCTYPE html>\n<html><head><title>Download</title></head></html>\n")
    version = _upload(bearer_client(make_user("creator")), upload, path)
    assert version.status == "rejected"
    error = version.report["issues"][0]
    assert error["code"] == "glb_magic"
    assert "not a GLB file" in error["message"]
    assert "HTML web page" in error["message"]
    assert "\\n" not in error["message"]  # no raw bytes
    assert version.report["issue_groups"][0]["hint"]


def test_the_two_triangle_counts_are_named(
    make_user: Any, bearer_client: Any, upload: Any, tmp_path: Path
) -> None:
    from workers.rendering.gltf_builder import GltfBuilder, box

    b = GltfBuilder()
    pos, nrm, _uv, idx = box()
    cube = b.add_mesh(pos, normals=nrm, indices=idx)
    for k in range(5):  # one mesh, five instances
        b.add_node(mesh=cube, translation=(2 * k, 0, 0))
    (tmp_path / "src").mkdir()
    b.write_glb(tmp_path / "src" / "five.glb")
    version = _upload(bearer_client(make_user("creator")), upload, tmp_path / "src" / "five.glb")
    assert version.status == "ready", version.report
    stats = version.report["stats"]
    assert (stats["triangles"], stats["unique_triangles"]) == (60, 12)
    assert version.report["khronos"]["info"]["totalTriangleCount"] == 12
    assert "drawn" in version.report["stat_labels"]["triangles"]
    assert "unique" in version.report["stat_labels"]["unique_triangles"]
