"""The creator page ``/create/`` end to end in headless Chromium against a real daphne: a
creator uploads the demo scene through the API and through the page, sees it become ready with a
thumbnail and its stats, publishes it; hostile packages show the rejection report (code and
JSON pointer) on the page."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests

from apps.accounts.models import User
from apps.accounts.services import token_pair_issue
from apps.core.testing_browser import ARTIFACTS, PASSWORD, Server, orm
from apps.scenes.tests import formats
from apps.scenes.tests.test_creator_files import many_bad_bounds
from apps.scenes.validation.tests import corpus
from apps.scenes.validation.tests.khronos_corpus import INVALID_CASES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

API = "/api/daedalus"


def bearer(username: str) -> dict[str, str]:
    def issue() -> str:
        return token_pair_issue(user=User.objects.get(username=username)).access

    return {"Authorization": f"Bearer {orm(issue)}"}


def sign_in(page: Any, platform: Server, username: str) -> None:
    page.goto(f"{platform.url}/create/")
    page.fill("#login-form input[name=username]", username)
    page.fill("#login-form input[name=password]", PASSWORD)
    page.click("#login-form button[type=submit]")
    page.locator("#upload-panel").wait_for(state="visible")
    assert page.inner_text("#who-name") == username


def upload_on_page(page: Any, path: Path, *, name: str = "", target: str = "") -> None:
    """Upload ``path`` from the form; ``target`` is the label of an existing scene's option."""
    if target:
        page.select_option("#target", label=target)
    else:
        page.select_option("#target", value="")
        page.fill("#upload-form input[name=name]", name)
        page.select_option("#upload-form select[name=visibility]", "public")
    page.set_input_files("#upload-form input[name=file]", str(path))
    page.click("#upload-button")


def wait_status(page: Any, status: str) -> None:
    page.wait_for_function(
        f"document.getElementById('version-status').textContent === '{status}'", timeout=25_000
    )


def stats_table(page: Any) -> dict[str, str]:
    # Read in one step: the report adds its "unique triangles" row while the page settles, and
    # a row-by-row read would skip the last row when one is inserted halfway.
    rows = page.evaluate(
        "[...document.querySelectorAll('#stats tr')].map(r => [...r.cells].map(c => c.innerText))"
    )
    return {cells[0]: cells[1] for cells in rows}


def test_creator_uploads_the_demo_scene_through_api_and_page_and_publishes_it(
    live_platform: Server, user_factory: Any, pages: Any, tmp_path: Path
) -> None:
    from workers.rendering.demo_scene import build_demo_scene

    user_factory("carol", "creator")
    auth = bearer("carol")
    glb = tmp_path / "demo-room.glb"
    summary = build_demo_scene(glb, target_triangles=4000)

    # Through the API: a new scene, processed to ready, with a PNG thumbnail.
    with glb.open("rb") as fh:
        created = requests.post(
            f"{live_platform.url}{API}/scenes",
            data={"name": "Demo room", "visibility": "public"},
            files={"file": ("demo-room.glb", fh, "model/gltf-binary")},
            headers=auth,
            timeout=60,
        )
    assert created.status_code == 201, created.text
    scene_id = created.json()["id"]
    v1 = requests.get(
        f"{live_platform.url}{API}/scenes/{scene_id}/versions/{created.json()['version']['id']}",
        headers=auth,
        timeout=10,
    ).json()
    assert v1["status"] == "ready", v1
    thumb = requests.get(f"{live_platform.url}{v1['thumbnail_url']}", headers=auth, timeout=10)
    assert thumb.status_code == 200
    assert thumb.content.startswith(b"\x89PNG")

    # Through the page: the same file as a new version of that scene.
    page = pages()
    sign_in(page, live_platform, "carol")
    page.locator("#scenes tbody tr").first.wait_for()
    assert page.locator("#scenes tbody tr").first.locator("td").nth(2).inner_text() == "none"
    upload_on_page(page, glb, target="a new version of “Demo room”")
    page.wait_for_function("document.getElementById('upload-bar').value === 100")
    assert "MiB" in page.inner_text("#upload-text") or "stored" in page.inner_text("#upload-text")
    wait_status(page, "ready")
    assert page.inner_text("#version-title").startswith("v2 · demo-room.glb")
    assert page.evaluate("document.getElementById('process-bar').value") == 100

    # The thumbnail image decodes (a real picture, fetched with the bearer token).
    page.wait_for_function(
        "(() => { const i = document.getElementById('thumbnail');"
        " return i.complete && i.naturalWidth > 0; })()"
    )
    size = page.evaluate(
        "(() => { const i = document.getElementById('thumbnail');"
        " return [i.naturalWidth, i.naturalHeight]; })()"
    )
    assert size[0] >= 64, size
    assert size[1] >= 32, size
    stats = stats_table(page)
    assert stats["triangles drawn"] == str(summary.triangles)
    assert stats["meshes"] == str(summary.meshes)
    assert stats["materials"] == str(summary.materials)
    assert stats["textures"] == str(summary.textures)
    assert stats["bounds"].startswith("(")

    page.click("#publish")
    page.wait_for_function("document.getElementById('publish-state').textContent === 'published'")
    assert page.locator("#publish").is_disabled()
    page.wait_for_function(
        "document.querySelector('#scenes tbody tr td:nth-child(3)').textContent === 'v2'"
    )

    # The API agrees: v2 is the published version, v1 is not.
    scene = requests.get(f"{live_platform.url}{API}/scenes/{scene_id}", headers=auth, timeout=10)
    assert scene.status_code == 200
    published = scene.json()["published_version"]
    assert published["number"] == 2
    assert published["status"] == "ready"
    assert published["is_published"] is True
    versions = requests.get(
        f"{live_platform.url}{API}/scenes/{scene_id}/versions", headers=auth, timeout=10
    ).json()
    rows = versions["results"] if isinstance(versions, dict) else versions
    assert {v["number"]: v["is_published"] for v in rows} == {1: False, 2: True}


def zipped_gltf_pointing_at_etc_passwd(tmp_path: Path) -> Path:
    gltf = corpus.gltf_with_buffer_uri("/etc/passwd")(tmp_path / "passwd")
    path = tmp_path / "passwd.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(gltf, "scene/scene.gltf")
    return path


def truncated_glb(tmp_path: Path) -> Path:
    source = corpus.make_single_mesh(tmp_path / "whole")
    path = tmp_path / "truncated.glb"
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def issues_table(page: Any) -> list[list[str]]:
    rows = page.locator("#issues tbody tr")
    return [
        [rows.nth(i).locator("td").nth(k).inner_text() for k in range(3)]
        for i in range(rows.count())
    ]


def test_hostile_uploads_show_the_report_with_code_and_pointer(
    live_platform: Server, user_factory: Any, pages: Any, tmp_path: Path
) -> None:
    user_factory("mallory", "creator")
    page = pages()
    sign_in(page, live_platform, "mallory")

    upload_on_page(page, zipped_gltf_pointing_at_etc_passwd(tmp_path), name="passwd")
    wait_status(page, "rejected")
    page.locator("#issues tbody tr").first.wait_for()
    issues = issues_table(page)
    assert ["uri_absolute", "/buffers/0/uri"] in [row[:2] for row in issues], issues
    assert page.locator("#ready-view").is_hidden()
    assert "root:" not in page.content()  # nothing of the file it pointed at

    upload_on_page(page, truncated_glb(tmp_path), name="truncated")
    page.wait_for_function("document.getElementById('version-title').textContent.includes('trunc')")
    wait_status(page, "rejected")
    page.wait_for_function(
        "document.querySelector('#issues tbody tr td')?.textContent === 'glb_truncated'"
    )
    issues = issues_table(page)
    assert issues[0][:2] == ["glb_truncated", "(the file)"], issues

    # The API holds the same reports; nothing was published.
    auth = bearer("mallory")
    scenes = requests.get(
        f"{live_platform.url}{API}/scenes?mine=1", headers=auth, timeout=10
    ).json()["results"]
    assert sorted(s["name"] for s in scenes) == ["passwd", "truncated"]
    assert all(s["published_version"] is None for s in scenes)


def test_creator_uploads_compressed_and_converted_scenes_and_sees_the_validators_report(
    live_platform: Server, user_factory: Any, pages: Any, tmp_path: Path
) -> None:
    user_factory("dora", "creator")
    auth = bearer("dora")
    # Through the API: Draco and KTX2 files as gltf-transform and basisu write them.
    for path in (
        formats.make_compressed(tmp_path / "d", "draco"),
        formats.make_ktx2(tmp_path / "k"),
    ):
        with path.open("rb") as fh:
            created = requests.post(
                f"{live_platform.url}{API}/scenes",
                data={"name": path.stem, "visibility": "public"},
                files={"file": (path.name, fh, "model/gltf-binary")},
                headers=auth,
                timeout=120,
            )
        assert created.status_code == 201, created.text
        body = created.json()
        version_url = (
            f"{live_platform.url}{API}/scenes/{body['id']}/versions/{body['version']['id']}"
        )
        assert requests.get(version_url, headers=auth, timeout=10).json()["status"] == "ready"
        report = requests.get(f"{version_url}/report", headers=auth, timeout=10).json()["report"]
        assert report["khronos"]["errors"] == 0
        assert report["processing"]["render_file"] == "render.glb"

    # Through the page: an FBX exported by assimp is converted, reported, published.
    fbx = formats.assimp_export(
        formats.make_reference(tmp_path / "ref"), tmp_path / "room.fbx", "fbxa"
    )
    page = pages()
    sign_in(page, live_platform, "dora")
    upload_on_page(page, fbx, name="FBX room")
    page.wait_for_function(
        "document.getElementById('version-title').textContent.includes('room.fbx')"
    )
    wait_status(page, "ready")
    page.wait_for_function(
        "document.getElementById('processing-note').textContent.includes('Converted from FBX')"
    )
    assert "Khronos glTF-Validator 2." in page.inner_text("#validator-note")
    assert "The converter fixed 2 value(s)" in page.inner_text("#processing-note")
    assert "roughnessFactor" in page.inner_text("#notes")  # what conversion adjusted, named
    assert stats_table(page)["triangles drawn"] == str(formats.REFERENCE_TRIANGLES)
    page.wait_for_selector("#stats tr[data-stat=unique]")
    assert stats_table(page)["unique triangles"] == str(formats.REFERENCE_TRIANGLES)
    page.wait_for_function(
        "(() => { const i = document.getElementById('thumbnail');"
        " return i.complete && i.naturalWidth > 0; })()"
    )
    page.screenshot(path=str(tmp_path / "fbx-ready.png"), full_page=True)
    page.click("#publish")
    page.wait_for_function("document.getElementById('publish-state').textContent === 'published'")

    # A file the official validator rejects shows its code, pointer and who found it.
    case = next(c for c in INVALID_CASES if c.name == "accessor_max_mismatch")
    upload_on_page(page, case.make(tmp_path / "bad"), name="bad bounds")
    page.wait_for_function(
        "document.getElementById('version-title').textContent.includes('scene.glb')"
    )
    wait_status(page, "rejected")
    page.locator("#issues tbody tr").first.wait_for()
    rows = page.locator("#issues tbody tr")
    found = [
        [rows.nth(i).locator("td").nth(k).inner_text() for k in (0, 1, 3)]
        for i in range(rows.count())
    ]
    assert [case.code, case.pointer, "Khronos glTF-Validator"] in found, found
    page.screenshot(path=str(tmp_path / "rejected.png"))

    # Forty of the same error are one row: a count, three places, and what to do.

    upload_on_page(page, many_bad_bounds(tmp_path / "many"), name="many bad bounds")
    page.wait_for_function(
        "document.getElementById('version-title').textContent.includes('bad-bounds')"
    )
    wait_status(page, "rejected")
    page.locator("#issues tbody tr").first.wait_for()
    rows = issues_table(page)
    same = [row for row in rows if row[0] == "ACCESSOR_MAX_MISMATCH"]
    assert len(same) == 1, rows
    assert "more" in same[0][1]
    assert " times, e.g.: " in same[0][2]
    assert "What to do:" in same[0][2]
    page.screenshot(path=str(tmp_path / "grouped.png"), full_page=True)


def test_creator_picks_the_default_clip_and_where_viewers_start(
    live_platform: Server, user_factory: Any, pages: Any, tmp_path: Path
) -> None:
    """The page lists the clips processing found (names and durations) and the starts (the
    scene's camera, outside framing it); a choice is saved on the version through the API."""
    from workers.rendering.tests.animated import make_two_clips

    user_factory("dora", "creator")
    page = pages()
    sign_in(page, live_platform, "dora")
    upload_on_page(page, make_two_clips(tmp_path, camera=True), name="Two clips")
    wait_status(page, "ready")
    page.locator("#clip-choice").wait_for(state="visible")
    assert page.locator("#default-clip option").all_inner_texts() == [
        "Slide (2.00 s), the first",
        "Bob (0.50 s)",
    ]
    starts = page.locator("#spawn-start option").all_inner_texts()
    assert starts == ['the scene\'s camera "Front"', "outside, framing the scene as its thumbnail"]
    assert page.inner_text("#spawn-scale option:checked") == "automatic (metres)"

    page.select_option("#default-clip", "Bob")
    page.wait_for_function("document.getElementById('playback-state').textContent === 'saved'")
    page.evaluate("document.getElementById('playback-state').textContent = ''")
    page.select_option("#spawn-start", "framing")
    page.wait_for_function("document.getElementById('playback-state').textContent === 'saved'")
    page.locator("#playback").screenshot(path=str(ARTIFACTS / "creator-playback.png"))

    scenes = requests.get(f"{live_platform.url}{API}/scenes", headers=bearer("dora"), timeout=10)
    scene = scenes.json()["results"][0]
    versions = requests.get(
        f"{live_platform.url}{API}/scenes/{scene['id']}/versions",
        headers=bearer("dora"),
        timeout=10,
    ).json()
    version = (versions["results"] if isinstance(versions, dict) else versions)[0]
    assert version["default_clip"] == "Bob"
    assert version["spawn_start"]["source"] == "bounds"
    assert version["spawn_choice"] == {"framing": True}
