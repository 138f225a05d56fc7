"""Helpers of the scene tests: the API's URLs of a scene and a version, and small valid
packages from the validation corpus."""

from pathlib import Path
from typing import Any

from django.urls import reverse

from apps.scenes.validation.tests import corpus


def scene_url(scene_id: Any) -> str:
    return reverse("daedalus-scene", args=[scene_id])


def version_url(scene_id: Any, version_id: Any, suffix: str = "") -> str:
    name = f"daedalus-version-{suffix}" if suffix else "daedalus-version"
    return reverse(name, args=[scene_id, version_id])


def small_glb(root: Path) -> Path:
    return corpus.make_single_mesh(root)
