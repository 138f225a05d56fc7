"""Rows of the scenes app for tests that need a scene version's data, not its processing
(``make_scene`` in conftest.py uploads and processes a real file)."""

import factory

from apps.accounts.tests.factories import UserFactory
from apps.scenes.models import Container, Scene, SceneVersion, VersionStatus


class SceneFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Scene

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"scene {n}")


class SceneVersionFactory(factory.django.DjangoModelFactory):
    """A ready version whose file is only named (nothing is stored)."""

    class Meta:
        model = SceneVersion

    scene = factory.SubFactory(SceneFactory)
    number = factory.Sequence(lambda n: n + 1)
    file = factory.LazyAttribute(lambda v: f"scenes/{v.scene.id}/{v.original_name}")
    container = Container.GLB
    original_name = "scene.glb"
    checksum = "0" * 64
    size_bytes = 1
    status = VersionStatus.READY
