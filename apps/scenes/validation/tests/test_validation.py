"""The validator against the generated corpus: valid scenes pass with the right stats, hostile
packages fail with the right code and pointer, and nothing outside a package is ever opened."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from apps.scenes.validation import GltfLimits, validate_package
from apps.scenes.validation.tests.corpus import (
    HOSTILE_CASES,
    VALID_CASES,
    HostileCase,
    ValidCase,
    box_builder,
    make_folder_gltf,
    make_textured_glb,
    write_glb,
)

# Audit hooks cannot be removed, so one hook records into whichever list is active.
_recording: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording and event == "open" and isinstance(args[0], str | bytes | Path):
        _recording[-1].append(str(args[0] if not isinstance(args[0], bytes) else args[0].decode()))


sys.addaudithook(_audit)


@contextmanager
def recorded_opens() -> Iterator[list[str]]:
    opened: list[str] = []
    _recording.append(opened)
    try:
        yield opened
    finally:
        _recording.pop()


def assert_nothing_outside(opened: list[str], package_dir: Path) -> None:
    """Absolute opens stay in the package dir (or are Python's own lazy imports); relative
    opens are names under a package directory descriptor and must not name the bait."""
    inside = str(package_dir.resolve())
    for path in opened:
        if not path.startswith("/"):
            assert not {"etc", "passwd", "secret", ".."} & set(path.split("/")), path
        elif path == inside or path.startswith(inside + "/"):
            assert not {"secret", "passwd"} & set(path[len(inside) :].split("/")), path
        else:
            # Only the interpreter's own files (lazy imports) may be opened elsewhere.
            assert path.startswith((sys.prefix, sys.base_prefix)), path


@pytest.fixture(scope="module", autouse=True)
def _warm_imports(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Lazy imports (zipfile internals, numpy) happen here, outside the recorded runs.
    for case in VALID_CASES:
        validate_package(case.make(tmp_path_factory.mktemp("warm")))


@pytest.mark.parametrize("case", VALID_CASES, ids=lambda c: c.name)
def test_valid_scene_is_accepted_with_stats(case: ValidCase, tmp_path: Path) -> None:
    path = case.make(tmp_path / case.name)
    with recorded_opens() as opened:
        report = validate_package(path, limits=GltfLimits())
    assert report.ok, report.issues
    assert [i for i in report.issues if i.severity == "error"] == []
    s = report.stats
    assert (s.vertices, s.triangles, s.nodes, s.meshes) == (
        case.vertices,
        case.triangles,
        case.nodes,
        case.meshes,
    )
    assert (s.materials, s.textures, s.texture_pixels) == (
        case.materials,
        case.textures,
        case.texture_pixels,
    )
    assert s.bounds_min == pytest.approx(case.bounds_min, abs=1e-5)
    assert s.bounds_max == pytest.approx(case.bounds_max, abs=1e-5)
    assert any(p.startswith(str(path.parent.resolve())) for p in opened)  # the hook sees opens
    assert_nothing_outside(opened, path.parent)
    json.dumps(report.to_dict())  # storable as JSON


def test_open_audit_catches_an_outside_open(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(b"x")
    with recorded_opens() as opened, open(outside, "rb"):
        pass
    with pytest.raises(AssertionError):
        assert_nothing_outside(opened, tmp_path / "pkg")


@pytest.mark.parametrize("case", HOSTILE_CASES, ids=lambda c: c.name)
def test_hostile_package_is_rejected(case: HostileCase, tmp_path: Path) -> None:
    path = case.make(tmp_path / case.name)
    with recorded_opens() as opened:
        report = validate_package(path, limits=case.limits)
    assert not report.ok
    found = [(i.code, i.pointer) for i in report.errors]
    assert (case.code, case.pointer) in found, found
    for issue in report.errors:
        assert issue.message  # a creator gets words, not just a code
    assert_nothing_outside(opened, path.parent)
    stored = report.to_dict()
    assert stored["ok"] is False
    assert json.loads(json.dumps(stored))["issues"]


def test_several_problems_are_reported_together(tmp_path: Path) -> None:
    doc, bin_chunk = box_builder().to_document_and_bin()
    doc["bufferViews"][0]["byteLength"] += 4096
    doc["nodes"][0]["mesh"] = 9
    doc["nodes"] += [{"children": [2]}, {"children": [1]}]
    doc["textures"] = [{"source": 3}]
    report = validate_package(write_glb(tmp_path, doc, bin_chunk), limits=GltfLimits())
    codes = {(i.code, i.pointer) for i in report.errors}
    assert {
        ("buffer_view_out_of_bounds", "/bufferViews/0"),
        ("index_out_of_range", "/nodes/0/mesh"),
        ("node_cycle", "/nodes/1/children"),
        ("index_out_of_range", "/textures/0/source"),
    } <= codes


def test_image_pixel_limit_is_configurable(tmp_path: Path) -> None:
    path = make_textured_glb(tmp_path)
    assert validate_package(path, limits=GltfLimits(max_image_pixels=32)).ok
    report = validate_package(path, limits=GltfLimits(max_image_pixels=31))
    assert [(i.code, i.pointer) for i in report.errors] == [("image_too_large", "/images/0")]


def test_total_decoded_bytes_limit(tmp_path: Path) -> None:
    path = make_folder_gltf(tmp_path)
    report = validate_package(path, limits=GltfLimits(max_total_decoded_bytes=100))
    assert [i.code for i in report.errors] == ["total_bytes_exceeded"]
