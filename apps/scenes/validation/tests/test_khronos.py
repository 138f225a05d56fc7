"""The official Khronos glTF-Validator as the gate: its errors reject with its code and
pointer, valid files pass, the hostile corpus stays refused, and a missing, crashing or hanging
validator is a named rejection rather than a silent skip."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from apps.scenes.validation import GltfLimits, validate_package
from apps.scenes.validation.tests.corpus import (
    HOSTILE_CASES,
    VALID_CASES,
    HostileCase,
    ValidCase,
    make_single_mesh,
    make_zipped_gltf,
    processing_reason,
)
from apps.scenes.validation.tests.khronos_corpus import INVALID_CASES, InvalidCase, make_animated


@pytest.mark.parametrize("case", INVALID_CASES, ids=lambda c: c.name)
def test_invalid_file_is_rejected_with_the_validators_reason(
    case: InvalidCase, tmp_path: Path
) -> None:
    report = validate_package(case.make(tmp_path / case.name), khronos=True)
    assert not report.ok
    errors = {(i.code, i.pointer): i for i in report.errors}
    assert (case.code, case.pointer) in errors, list(errors)
    issue = errors[(case.code, case.pointer)]
    assert issue.source == "khronos"
    assert issue.message
    stored = report.to_dict()
    assert stored["khronos"]["errors"] >= 1
    assert stored["khronos"]["version"].startswith("2.")


@pytest.mark.parametrize("case", VALID_CASES, ids=lambda c: c.name)
def test_valid_file_passes_the_validator(case: ValidCase, tmp_path: Path) -> None:
    report = validate_package(case.make(tmp_path / case.name), khronos=True)
    assert report.ok, report.issues
    assert report.khronos is not None
    assert report.khronos["errors"] == 0
    assert report.stats.triangles == case.triangles  # our checks still ran after the gate
    # Warnings and infos are kept in the report, tagged as the validator's.
    assert all(i.source == "khronos" for i in report.issues)


def test_validator_warnings_and_infos_are_reported(tmp_path: Path) -> None:
    report = validate_package(make_animated(tmp_path), khronos=True)
    assert report.ok
    unused = [i for i in report.issues if i.code == "UNUSED_OBJECT"]
    assert unused
    assert unused[0].severity == "info"
    assert unused[0].pointer == "/meshes/0/primitives/0/attributes/TEXCOORD_0"
    assert report.khronos is not None
    assert report.khronos["info"]["animationCount"] == 1


def test_zip_package_is_validated_from_its_vetted_files(tmp_path: Path) -> None:
    report = validate_package(make_zipped_gltf(tmp_path), khronos=True)
    assert report.ok, report.issues
    assert report.khronos is not None
    assert report.khronos["errors"] == 0


@pytest.mark.parametrize("case", HOSTILE_CASES, ids=lambda c: c.name)
def test_hostile_file_is_still_rejected_behind_the_gate(case: HostileCase, tmp_path: Path) -> None:
    report = validate_package(case.make(tmp_path / case.name), limits=case.limits, khronos=True)
    assert not report.ok
    assert processing_reason(case) in [(i.code, i.pointer) for i in report.errors]


def _fake_node(tmp_path: Path, body: str) -> str:
    """A stand-in for the node binary: the validator process misbehaving in a given way."""
    script = tmp_path / "node"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


def test_missing_node_is_a_clear_rejection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    report = validate_package(make_single_mesh(tmp_path), khronos=True)
    assert [i.code for i in report.errors] == ["validator_unavailable"]
    assert "Node.js" in report.errors[0].message


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ("exec sleep 30", "validator_timeout"),
        ("echo 'Segmentation fault' >&2; exit 139", "validator_failed"),
        (
            "echo 'FATAL ERROR: Reached heap limit Allocation failed' >&2; exit 134",
            "resource_limit_exceeded",
        ),
        ("echo 'not json'", "validator_failed"),
    ],
    ids=["hang", "crash", "out_of_memory", "garbage"],
)
def test_validator_failure_is_a_named_rejection(
    body: str, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VRP_NODE", _fake_node(tmp_path, body))
    report = validate_package(make_single_mesh(tmp_path), khronos=True, tool_timeout_s=1)
    assert [i.code for i in report.errors] == [code]


def test_our_limits_still_apply_after_the_gate(tmp_path: Path) -> None:
    report = validate_package(
        make_single_mesh(tmp_path), limits=GltfLimits(max_triangles=5), khronos=True
    )
    assert "too_many_triangles" in [i.code for i in report.errors]
    assert os.environ.get("VRP_NODE") is None


def test_a_valid_file_needing_an_unsupported_extension_gets_a_named_rejection(
    tmp_path: Path,
) -> None:
    import numpy as np

    from workers.rendering.gltf_builder import GltfBuilder, box, write_glb

    b = GltfBuilder()
    pos, nrm, _, idx = box()
    b.add_node(mesh=b.add_mesh(pos, normals=nrm, indices=idx))
    offsets = b.add_accessor(np.array([[0, 0, 0], [2, 0, 0]], np.float32), target=None)
    doc, bin_chunk = b.to_document_and_bin()
    doc["nodes"][0]["extensions"] = {
        "EXT_mesh_gpu_instancing": {"attributes": {"TRANSLATION": offsets}}
    }
    doc["extensionsUsed"] = doc["extensionsRequired"] = ["EXT_mesh_gpu_instancing"]
    write_glb(doc, bin_chunk, tmp_path / "instanced.glb")
    report = validate_package(tmp_path / "instanced.glb", khronos=True)
    assert report.khronos is not None
    assert report.khronos["errors"] == 0  # valid glTF: the official validator has no error
    assert [(i.code, i.pointer) for i in report.errors] == [
        ("extension_unsupported", "/extensionsRequired/0")
    ]
    assert "EXT_mesh_gpu_instancing" in report.errors[0].message
