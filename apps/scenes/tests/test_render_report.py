"""The renderer's named warnings reach the scene version's report (issue 20): a feature the
stream and the thumbnail will not draw as authored is said before publishing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.files import File

from apps.scenes import services
from apps.scenes.models import VersionStatus
from apps.scenes.tasks import process_scene_version
from workers.rendering.gltf_builder import GltfBuilder, box, write_glb

pytestmark = pytest.mark.django_db


def _sheen_glb(root: Path) -> Path:
    b = GltfBuilder()
    mat = b.add_material(base_color_factor=(0.6, 0.2, 0.2, 1))
    pos, nrm, uv, idx = box()
    b.add_node(mesh=b.add_mesh(pos, normals=nrm, uvs=uv, indices=idx, material=mat))
    doc, bin_chunk = b.to_document_and_bin()
    doc["materials"][0]["extensions"] = {"KHR_materials_sheen": {"sheenColorFactor": [1, 1, 1]}}
    doc["extensionsUsed"] = ["KHR_materials_sheen"]
    path = root / "sheen.glb"
    write_glb(doc, bin_chunk, path)
    return path


def test_version_report_names_an_extension_the_renderer_does_not_draw(
    make_user: Any, tmp_path: Path
) -> None:
    with _sheen_glb(tmp_path).open("rb") as fh:
        _, version = services.scene_create(
            owner=make_user("creator"), name="s", upload=File(fh, name="sheen.glb")
        )
    assert process_scene_version.delay(str(version.id)).get() == "ready"
    version.refresh_from_db()
    assert version.status == VersionStatus.READY
    renderer_issues = [i for i in version.report["issues"] if i.get("source") == "renderer"]
    assert [(i["code"], i["feature"], i["severity"]) for i in renderer_issues] == [
        ("render_unsupported_extension", "KHR_materials_sheen", "warning")
    ]
    assert "sheen" in renderer_issues[0]["message"]
