"""Kubernetes manifests (deploy/kubernetes): schema-valid offline, wired together correctly.

Validation uses the schemas bundled in the `kubernetes-validate` wheel (no network), strict:
unknown fields fail. Every kind used here is a core kind, so nothing is skipped.
"""

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from deploy.kubernetes import sync

KUBE_DIR = Path(__file__).resolve().parents[1] / "kubernetes"
KUBERNETES_VERSION = "1.30"
SPEC_FILES = {
    "kairo-namespace.yaml",
    "prometheus-net.yaml",
    "kairo-services.yaml",
    "delphi-oracle.yaml",
    "hermes-gateway.yaml",
    "auto-scaling.yaml",
    "turn-relay.yaml",
    "pgbouncer.yaml",
}
SECRET_TEMPLATE = KUBE_DIR / "kairo-secrets.yaml.template"


def _documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    # The Secret template is not *.yaml so that `kubectl apply -f deploy/kubernetes/` skips it.
    for path in [*sorted(KUBE_DIR.glob("*.yaml")), SECRET_TEMPLATE]:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((path.name, doc))
    return docs


DOCS = _documents()


def _find(kind: str, name: str) -> dict[str, Any]:
    matches = [d for _, d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(matches) == 1, (kind, name)
    return matches[0]


def _pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    return doc["spec"]["template"]["spec"]


def test_the_spec_files_are_all_there() -> None:
    assert {p.name for p in KUBE_DIR.glob("*.yaml")} == SPEC_FILES


@pytest.mark.parametrize(
    ("file", "doc"), DOCS, ids=[f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in DOCS]
)
def test_manifest_validates_against_the_kubernetes_schema(file: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    if doc["kind"] != "Namespace":
        assert doc["metadata"]["namespace"] in {"kairo", "monitoring", "kairo-turn"}


def test_a_broken_manifest_is_caught() -> None:
    """The validator really checks: a typo in a container field fails."""
    web = yaml.safe_load(yaml.safe_dump(_find("Deployment", "kairo-web")))
    _pod_spec(web)["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(web, KUBERNETES_VERSION, strict=True)


def test_generated_configmaps_match_their_sources() -> None:
    for manifest in sync.GENERATED:
        assert (KUBE_DIR / manifest).read_text() == sync.rendered(manifest), (
            f"{manifest} is stale: run `python -m deploy.kubernetes.sync`"
        )
    volumes = _pod_spec(_find("Deployment", "hermes-gateway"))["volumes"]
    items = next(v for v in volumes if v["name"] == "config")["configMap"]["items"]
    assert {i["key"]: i["path"] for i in items} == {
        key: sync.gateway_mount_path(key) for key in sync.gateway_files()
    }


def test_workloads_have_probes_resources_and_run_unprivileged() -> None:
    for _, doc in DOCS:
        if doc["kind"] not in {"Deployment", "StatefulSet", "Job"}:
            continue
        pod = _pod_spec(doc)
        assert pod["securityContext"]["runAsNonRoot"] is True, doc["metadata"]["name"]
        for container in pod["containers"]:
            assert {"requests", "limits"} <= container["resources"].keys()
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            if doc["kind"] != "Job":
                assert "livenessProbe" in container, doc["metadata"]["name"]

    web = _pod_spec(_find("Deployment", "kairo-web"))["containers"][0]
    assert web["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert web["readinessProbe"]["httpGet"]["path"] == "/readyz"
    config = _find("ConfigMap", "kairo-config")["data"]
    assert config["DJANGO_SETTINGS_MODULE"] == "vrplatform.settings.production"


def test_secrets_come_from_secret_objects_and_the_template_holds_no_real_secret() -> None:
    secret = _find("Secret", "kairo-secrets")["stringData"]
    assert {
        "DJANGO_SECRET_KEY",
        "JWT_SECRET",
        "OIDC_RSA_PRIVATE_KEY",
        "DATABASE_URL",
        "REDIS_URL",
    } <= secret.keys()
    for _, doc in DOCS:
        if doc["kind"] == "Secret":
            for key, value in doc["stringData"].items():
                # REDIS_URL carries no password in the template; everything else is a hole.
                assert "REPLACE_ME" in value or key == "REDIS_URL", (doc["metadata"], key)
    web_env = {
        e["name"]: e for e in _pod_spec(_find("Deployment", "kairo-web"))["containers"][0]["env"]
    }
    for name in ("DJANGO_SECRET_KEY", "JWT_SECRET", "OIDC_RSA_PRIVATE_KEY", "DATABASE_URL"):
        assert web_env[name]["valueFrom"]["secretKeyRef"]["name"] == "kairo-secrets"
    # The streaming workers get their own token only: no platform secret, no database.
    streaming = _pod_spec(_find("StatefulSet", "kairo-streaming"))["containers"][0]
    names = {e["name"] for e in streaming["env"]}
    assert names.isdisjoint({"DJANGO_SECRET_KEY", "JWT_SECRET", "DATABASE_URL", "REDIS_URL"})
    assert "envFrom" not in streaming


def test_streaming_workers_land_on_gpu_nodes() -> None:
    pod = _pod_spec(_find("StatefulSet", "kairo-streaming"))
    resources = pod["containers"][0]["resources"]
    assert resources["limits"]["nvidia.com/gpu"] == "1"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod[
        "tolerations"
    ]


def test_autoscalers_and_disruption_budgets() -> None:
    web = _find("HorizontalPodAutoscaler", "kairo-web")["spec"]
    assert web["metrics"][0]["resource"]["name"] == "cpu"
    streaming = _find("HorizontalPodAutoscaler", "kairo-streaming")["spec"]
    assert streaming["scaleTargetRef"]["name"] == "kairo-streaming"
    external = streaming["metrics"][0]["external"]
    assert external["metric"]["name"] == "vrplatform_streaming_workers_desired"
    adapter = yaml.safe_load(_find("ConfigMap", "prometheus-adapter-rules")["data"]["config.yaml"])
    assert "vrplatform_streaming_workers_desired" in {
        rule["name"]["as"] for rule in adapter["externalRules"]
    }
    budgets = {d["metadata"]["name"] for _, d in DOCS if d["kind"] == "PodDisruptionBudget"}
    assert {"kairo-web", "kairo-streaming", "hermes-gateway"} <= budgets


def _selects(policy: dict[str, Any], labels: dict[str, str]) -> bool:
    selector = policy["spec"]["podSelector"]
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        assert expr["operator"] == "In"
        if labels.get(expr["key"]) not in expr["values"]:
            return False
    return True


def _allowed_sources(target: dict[str, str]) -> list[dict[str, str]]:
    """matchLabels of every pod selector allowed in by the policies that select target."""
    sources = []
    for _, doc in DOCS:
        if doc["kind"] != "NetworkPolicy" or not _selects(doc, target):
            continue
        for rule in doc["spec"].get("ingress", []):
            for peer in rule.get("from", [{"anywhere": "true"}]):
                sources.append(peer.get("podSelector", {}).get("matchLabels", {"any": "?"}))
    return sources


def _labels(kind: str, name: str) -> dict[str, str]:
    return _find(kind, name)["spec"]["template"]["metadata"]["labels"]


def test_network_policies_gateway_to_web_to_data_layer() -> None:
    default_deny = _find("NetworkPolicy", "default-deny-ingress")["spec"]
    assert default_deny == {"podSelector": {}, "policyTypes": ["Ingress"]}

    web_sources = _allowed_sources(_labels("Deployment", "kairo-web"))
    assert {"app.kubernetes.io/name": "hermes-gateway"} in web_sources
    assert all(
        s.get("app.kubernetes.io/name") in {"hermes-gateway", "prometheus"} for s in web_sources
    )

    for data in ("postgres", "redis"):
        sources = _allowed_sources(_labels("StatefulSet", data))
        assert sources == [{"vrplatform/data-client": "true"}]
    clients = {
        d["metadata"]["name"]
        for _, d in DOCS
        if d["kind"] in {"Deployment", "StatefulSet", "Job"}
        and d["spec"]["template"]["metadata"]["labels"].get("vrplatform/data-client") == "true"
    }
    assert clients == {"kairo-web", "kairo-celery", "kairo-setup", "kairo-pgbouncer"}


def test_pgbouncer_pools_transactions_for_the_data_clients_only() -> None:
    """PgBouncer (deploy/README.md "Cluster sizing") runs in transaction mode, which the
    platform's DB_TRANSACTION_POOLER setting is for, and only data clients reach it."""
    container = _pod_spec(_find("Deployment", "kairo-pgbouncer"))["containers"][0]
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}
    assert env["POOL_MODE"] == "transaction"
    assert env["DB_HOST"] == "postgres.kairo.svc"
    assert env["DB_PASSWORD"] == {
        "secretKeyRef": {"name": "kairo-secrets", "key": "POSTGRES_PASSWORD"}
    }
    port = _find("Service", "pgbouncer")["spec"]["ports"][0]["port"]
    assert port == int(env["LISTEN_PORT"])
    sources = _allowed_sources(_labels("Deployment", "kairo-pgbouncer"))
    assert sources == [{"vrplatform/data-client": "true"}]


def test_the_turn_relay_shares_the_platforms_secret_and_runs_on_the_host_network() -> None:
    turn = _pod_spec(_find("Deployment", "kairo-turn"))
    assert turn["hostNetwork"] is True  # relay port ranges: no Service can publish them
    namespace = _find("Namespace", "kairo-turn")["metadata"]["labels"]
    assert namespace["pod-security.kubernetes.io/enforce"] == "privileged"
    assert (
        _find("Namespace", "kairo")["metadata"]["labels"]["pod-security.kubernetes.io/enforce"]
        == "baseline"
    )  # only the relay's namespace allows the host network
    container = turn["containers"][0]
    assert container["args"] == ["turn"]
    env = {e["name"]: e for e in container["env"]}
    assert env["TURN_SHARED_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == "TURN_SHARED_SECRET"
    web = _pod_spec(_find("Deployment", "kairo-web"))["containers"][0]
    web_env = {e["name"]: e for e in web["env"]}
    ref = web_env["TURN_SHARED_SECRET"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "kairo-secrets", "key": "TURN_SHARED_SECRET"}
    assert "TURN_SHARED_SECRET" in _find("Secret", "kairo-turn-secret")["stringData"]
    assert _find("ConfigMap", "kairo-config")["data"]["TURN_URLS"].startswith("turn:")
