// The creator page: sign in, upload with a progress bar, follow processing, publish.
// An ES module on the client's shared ones, no build step: api.js keeps the token pair (the
// same sessionStorage pair as the client's pages, this tab only) and refreshes it; dom.js has
// the page helpers.
import { accessToken, api, ApiError, onExpired, signIn, signOut, tokens } from "../client/js/api.js";
import { $, errorText } from "../client/js/dom.js";

const API = "/api/daedalus";
const POLL_MS = 1000;
let pollTimer = null;

function show(id, visible) { $(id).hidden = !visible; }

// Signed out here (the button, or the sign-in expired): this page's own sign-in form.
function signedOut() {
  if (pollTimer) clearTimeout(pollTimer);
  render();
}
onExpired(signedOut);

function render() {
  const current = tokens();
  const signedIn = Boolean(current?.access);
  show("login-panel", !signedIn);
  show("upload-panel", signedIn);
  show("scenes-panel", signedIn);
  show("who", signedIn);
  if (!signedIn) { show("version-panel", false); return; }
  $("who-name").textContent = current.user?.username || "";
  loadScenes().catch((e) => { $("upload-error").textContent = errorText(e); });
}

async function loadScenes() {
  const page = await api(`${API}/scenes?mine=1&limit=200`);
  const tbody = $("scenes").querySelector("tbody");
  const target = $("target");
  tbody.replaceChildren();
  target.replaceChildren(new Option("a new scene", ""));
  for (const s of page.results) {
    const tr = document.createElement("tr");
    const published = s.published_version ? `v${s.published_version.number}` : "none";
    for (const text of [s.name, s.visibility, published]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
    target.appendChild(new Option(`a new version of “${s.name}”`, s.id));
  }
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  $("login-error").textContent = "";
  try {
    await signIn(form.get("username"), form.get("password"));
  } catch (e) {
    $("login-error").textContent = errorText(e, "Sign-in failed.");
    return;
  }
  ev.target.reset();
  render();
});

$("logout").addEventListener("click", async () => {
  await signOut({ redirect: false });
  signedOut();
});

$("target").addEventListener("change", () => show("new-scene-fields", !$("target").value));

// XHR, not fetch: only XHR reports upload progress.
function upload(url, formData) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.setRequestHeader("Authorization", `Bearer ${accessToken()}`);
    xhr.upload.onprogress = (ev) => {
      if (!ev.lengthComputable) return;
      const pct = Math.round((ev.loaded / ev.total) * 100);
      $("upload-bar").value = pct;
      $("upload-text").textContent = `${pct}% of ${(ev.total / 1048576).toFixed(1)} MiB`;
    };
    xhr.upload.onload = () => { $("upload-text").textContent = "stored, waiting for the server…"; };
    xhr.onload = () => {
      let body = null;
      try { body = JSON.parse(xhr.responseText); } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) { resolve(body); return; }
      const e = body?.error || {};
      const err = new ApiError(xhr.status, e.code, e.message, e.detail);
      reject(new Error(errorText(err, `Upload failed (HTTP ${xhr.status}).`)));
    };
    xhr.onerror = () => reject(new Error("Network error during upload."));
    xhr.send(formData);
  });
}

$("upload-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = new FormData(ev.target);
  const sceneId = form.get("target");
  const data = new FormData();
  data.append("file", form.get("file"));
  let url = `${API}/scenes/${sceneId}/versions`;
  if (!sceneId) {
    const file = form.get("file");
    data.append("name", form.get("name") || (file && file.name) || "Untitled scene");
    data.append("description", form.get("description") || "");
    data.append("visibility", form.get("visibility"));
    url = `${API}/scenes`;
  }
  $("upload-error").textContent = "";
  show("upload-progress", true);
  $("upload-bar").value = 0;
  $("upload-button").disabled = true;
  try {
    await refreshIfOld();
    const body = await upload(url, data);
    const version = body.version || body; // create answers with the scene and its version
    watchVersion(version.scene_id, version.id);
    loadScenes().catch(() => {});
  } catch (e) {
    $("upload-error").textContent = errorText(e);
  } finally {
    $("upload-button").disabled = false;
  }
});

// XHR does not go through api(): make sure a long upload does not start with a stale token.
async function refreshIfOld() {
  await api("/api/athena/profile").catch(() => {
    throw new Error("Please sign in again.");
  });
}

function watchVersion(sceneId, versionId) {
  if (pollTimer) clearTimeout(pollTimer);
  show("version-panel", true);
  show("ready-view", false);
  show("rejected-view", false);
  $("publish-state").textContent = "";
  const poll = async () => {
    let v;
    try {
      v = await api(`${API}/scenes/${sceneId}/versions/${versionId}`);
    } catch (e) {
      $("version-stage").textContent = errorText(e);
      pollTimer = setTimeout(poll, POLL_MS * 3);
      return;
    }
    $("version-title").textContent = `v${v.number} · ${v.original_name}`;
    $("version-status").textContent = v.status;
    $("version-status").className = `status-${v.status}`;
    $("version-stage").textContent = v.stage && v.status === "processing" ? `(${v.stage})` : "";
    $("process-bar").value = v.progress;
    if (v.status === "ready") showReady(sceneId, v);
    else if (v.status === "rejected") showRejected(sceneId, v);
    else pollTimer = setTimeout(poll, POLL_MS);
  };
  poll();
}

async function showReady(sceneId, v) {
  show("ready-view", true);
  const stats = $("stats");
  stats.replaceChildren();
  // "Triangles drawn" counts every instance of a mesh (what the renderer draws); the
  // report's "unique triangles" (added by showReport) counts each mesh once, as the Khronos
  // validator does: two different figures, so each is named.
  const rows = [
    ["triangles drawn", v.stats.triangles], ["vertices", v.stats.vertices], ["meshes", v.stats.meshes],
    ["materials", v.stats.materials], ["textures", v.stats.textures],
    ["texture pixels", v.stats.texture_pixels], ["size", `${(v.size_bytes / 1048576).toFixed(2)} MiB`],
    ["bounds", v.stats.bounds_min ? `${fmt(v.stats.bounds_min)} … ${fmt(v.stats.bounds_max)}` : "—"],
  ];
  for (const [k, val] of rows) {
    const tr = stats.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = String(val);
  }
  showReport(sceneId, v).catch(() => {});
  showPlayback(sceneId, v);
  if (v.thumbnail_url) {
    // The thumbnail needs the bearer token, which an <img src> cannot send.
    try {
      const r = await api(v.thumbnail_url, { raw: true });
      $("thumbnail").src = URL.createObjectURL(await r.blob());
    } catch {
      // No picture: the page works without it.
    }
  }
  $("publish").disabled = v.is_published;
  $("publish-state").textContent = v.is_published ? "published" : "";
  $("publish").onclick = async () => {
    try {
      await api(`${API}/scenes/${sceneId}/publish`, { method: "POST", body: { version_id: v.id } });
      $("publish").disabled = true;
      $("publish-state").textContent = "published";
      loadScenes().catch(() => {});
    } catch (e) {
      $("publish-state").textContent = errorText(e);
    }
  };
}

// The creator's playback choices (PATCH the version): the animation clip sessions play
// until their host switches, where viewers start (the scene's camera, outside framing it as
// the thumbnail does, or another camera), and the scene's units when the guess is wrong.
function showPlayback(sceneId, v) {
  const clips = v.stats.clips || [];
  const spawn = v.stats.spawn || {};
  const choice = v.spawn_choice || {};
  const option = (value, text) => Object.assign(document.createElement("option"), { value, textContent: text });
  show("clip-choice", clips.length > 0);
  $("default-clip").replaceChildren(
    ...clips.map((c, i) => option(i === 0 ? "" : c.name, `${c.name} (${Number(c.duration).toFixed(2)} s)${i === 0 ? ", the first" : ""}`)),
  );
  $("default-clip").value = clips.length && v.default_clip !== clips[0].name ? v.default_clip : "";
  const cameras = spawn.cameras || [];
  $("spawn-start").replaceChildren(
    option("default", cameras.length ? `the scene's camera "${cameras[0].name}"` : "outside, framing the scene as its thumbnail"),
    ...(cameras.length ? [option("framing", "outside, framing the scene as its thumbnail")] : []),
    ...cameras.slice(1).map((c, i) => option(`camera:${i + 1}`, `camera "${c.name}"`)),
  );
  $("spawn-start").value = choice.framing ? "framing" : choice.camera ? `camera:${choice.camera}` : "default";
  $("spawn-scale").options[0].textContent = `automatic (${spawn.scale === 100 ? "centimetres" : "metres"})`;
  $("spawn-scale").value = choice.scale ? String(choice.scale) : "";
  $("playback-state").textContent = "";
  const save = async () => {
    const start = $("spawn-start").value;
    const spawnChoice = start === "framing" ? { framing: true } : start.startsWith("camera:") ? { camera: Number(start.slice(7)) } : {};
    if ($("spawn-scale").value) spawnChoice.scale = Number($("spawn-scale").value);
    try {
      await api(`${API}/scenes/${sceneId}/versions/${v.id}`, {
        method: "PATCH",
        body: { default_clip: $("default-clip").value, spawn: spawnChoice },
      });
      $("playback-state").textContent = "saved";
    } catch (e) {
      $("playback-state").textContent = errorText(e);
    }
  };
  for (const id of ["default-clip", "spawn-start", "spawn-scale"]) $(id).onchange = save;
}

// What processing did (converted from FBX/OBJ, decoded compression) and the official
// validator's warnings and infos: a ready scene's report is worth reading too.
async function showReport(sceneId, v) {
  const body = await api(`${API}/scenes/${sceneId}/versions/${v.id}/report`);
  const report = body.report || {};
  const processing = report.processing || {};
  const notes = [];
  if (processing.converted_from) {
    const c = processing.converted_from;
    notes.push(`Converted from ${c.from} to glTF with ${c.tool}.`);
    const fixes = (c.normalised || []).length;
    if (fixes) notes.push(`The converter fixed ${fixes} value(s) outside glTF's rules (listed below).`);
  }
  if ((processing.decoded || []).length) {
    notes.push(`Decoded ${processing.decoded.join(", ")} into a render-ready copy.`);
  }
  $("processing-note").textContent = notes.join(" ");
  const k = report.khronos;
  $("validator-note").textContent = k
    ? `Khronos glTF-Validator ${k.version}: ${k.errors} errors, ${k.warnings} warnings, ${k.infos} infos.`
    : "";
  const unique = (report.stats || {}).unique_triangles;
  if (unique !== undefined && !$("stats").querySelector("tr[data-stat=unique]")) {
    const tr = $("stats").insertRow(1);
    tr.dataset.stat = "unique";
    tr.insertCell().textContent = "unique triangles";
    tr.insertCell().textContent = String(unique);
  }
  const rest = groupIssues(report).filter((g) => g.severity !== "error");
  const tbody = $("notes").querySelector("tbody");
  tbody.replaceChildren();
  for (const group of rest) issueRow(tbody, group, group.severity);
  $("notes").hidden = rest.length === 0;
}

// Issues by code: the stored report counts every issue in issue_groups and keeps only a few
// of each code, so 200 bad accessors are one row ("200 times, e.g. ..."), not 200 rows.
// Reports stored before grouping existed are grouped here the same way.
function groupIssues(report) {
  if (report.issue_groups) return report.issue_groups;
  const groups = new Map();
  for (const i of report.issues || []) {
    const key = `${i.severity}|${i.code}|${i.feature || ""}`;
    const g = groups.get(key) || {
      code: i.code, severity: i.severity, source: i.source, count: 0,
      message: i.message, examples: [], hint: "",
    };
    g.count += 1;
    if (g.examples.length < 3) g.examples.push(i.pointer || "");
    groups.set(key, g);
  }
  return [...groups.values()];
}

function issueRow(tbody, group, last) {
  const tr = tbody.insertRow();
  tr.insertCell().textContent = group.code;
  const where = group.examples.map((p) => p || "(the file)").join(", ");
  const more = group.count - group.examples.length;
  tr.insertCell().appendChild(document.createElement("code")).textContent =
    more > 0 ? `${where} … and ${more} more` : where;
  const what = tr.insertCell();
  const times = `${group.count}${group.at_least ? " or more" : ""} times`;
  what.textContent = group.count > 1 ? `${times}, e.g.: ${group.message}` : group.message;
  if (group.hint) {
    const hint = what.appendChild(document.createElement("div"));
    hint.className = "hint";
    hint.textContent = `What to do: ${group.hint}`;
  }
  tr.insertCell().textContent = last;
}

function fmt(xyz) { return `(${xyz.map((n) => n.toFixed(2)).join(", ")})`; }

async function showRejected(sceneId, v) {
  show("rejected-view", true);
  const tbody = $("issues").querySelector("tbody");
  tbody.replaceChildren();
  const body = await api(`${API}/scenes/${sceneId}/versions/${v.id}/report`);
  for (const group of groupIssues(body.report || {}).filter((g) => g.severity === "error")) {
    issueRow(tbody, group, group.source === "khronos" ? "Khronos glTF-Validator" : "platform");
  }
}

render();
