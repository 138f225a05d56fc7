"""Random edits anywhere in a valid document must give a report, never an exception."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.scenes.validation import GltfLimits, validate_package
from apps.scenes.validation.tests.corpus import (
    box_builder,
    interleaved_document,
    png_bytes,
    write_glb,
)
from workers.rendering.gltf_builder import GltfBuilder

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from(["", "VEC3", "SCALAR", "MAT2", "../x", "data:,", "x.bin"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix] if prefix else []
    if isinstance(node, dict):
        for k, v in node.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            out += _paths(v, (*prefix, i))
    return out


def _seed_documents() -> list[tuple[dict[str, Any], bytes]]:
    hierarchy = GltfBuilder()
    parent = hierarchy.add_node(translation=(1, 2, 3))
    docs = [box_builder(texture=png_bytes()).to_document_and_bin(), interleaved_document()]
    hierarchy.add_node(parent=parent, scale=(2, 2, 2))
    docs.append(hierarchy.to_document_and_bin())
    return docs


SEEDS = _seed_documents()


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_random_document_edits_never_crash(tmp_path: Path, data: st.DataObject) -> None:
    doc, bin_chunk = data.draw(st.sampled_from(SEEDS))
    doc = json.loads(json.dumps(doc))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = _paths(doc)
        target = data.draw(st.sampled_from(paths))
        holder: Any = doc
        for key in target[:-1]:
            holder = holder[key]
        if data.draw(st.booleans()) and isinstance(holder, dict):
            del holder[target[-1]]
        else:
            holder[target[-1]] = data.draw(json_values)
    report = validate_package(write_glb(tmp_path, doc, bin_chunk), limits=GltfLimits())
    assert isinstance(report.to_dict()["ok"], bool)
    if not report.ok:
        assert all(issue.code and issue.message for issue in report.errors)
