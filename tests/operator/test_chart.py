"""The Helm chart with the real helm: lint, schema, release-scoped names, least privilege, and
config/deploy/ in step with it (no cluster needed)."""

from __future__ import annotations

import copy

import pytest
import yaml

from tests.operator.chart import CHART, ROOT, by_kind, helm, render

HELM_ONLY_LABELS = ("helm.sh/chart", "app.kubernetes.io/managed-by")


@pytest.mark.parametrize("sets", [(), ("watchNamespace=team-a",), ("metrics.enabled=true",)])
def test_lint_strict(sets):
    args = ["lint", "--strict", str(CHART)]
    for s in sets:
        args += ["--set", s]
    helm(*args)


@pytest.mark.parametrize(
    "bad, says",
    [
        ("watchNamepsace=team-a", "watchNamepsace"),  # a typo
        ("logFormat=yaml", "/logFormat"),
        ("metrics.port=http", "/metrics/port"),
        ("image.pullPolicy=Sometimes", "/image/pullPolicy"),
        ("watchNamespace=Team_A", "/watchNamespace"),
        ("metrics.serviceMonitr.enabled=true", "serviceMonitr"),
    ],
)
def test_schema_rejects_bad_values(bad, says):
    proc = helm("template", "x", str(CHART), "--set", bad, check=False)
    assert proc.returncode != 0, f"--set {bad} rendered without error"
    assert "values don't meet the specifications of the schema" in proc.stderr
    assert says in proc.stderr


def test_two_releases_share_no_object_name():
    a = render("alpha", "ns-a")
    b = render("beta", "ns-a")
    names = lambda objs: {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objs}  # noqa: E731
    assert names(a) and not names(a) & names(b)
    # the same release name in two namespaces: the cluster-scoped objects still differ
    c = render("alpha", "ns-c")
    cluster_scoped = lambda objs: {n for n in names(objs) if n[1] is None}  # noqa: E731
    assert cluster_scoped(a) and not cluster_scoped(a) & cluster_scoped(c)


def test_standard_labels_and_selector():
    objs = render("alpha", "ns-a")
    for o in objs:
        labels = o["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "s1mple"
        assert labels["app.kubernetes.io/instance"] == "alpha"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["app.kubernetes.io/version"]
    (dep,) = by_kind(objs, "Deployment")
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector["app.kubernetes.io/instance"] == "alpha"
    assert selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()


def test_namespaced_mode_grants_only_a_role_in_the_watched_namespace():
    objs = render("alpha", "ops", "watchNamespace=team-a")
    kinds = {o["kind"] for o in objs}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding"}
    (role,) = by_kind(objs, "Role")
    (binding,) = by_kind(objs, "RoleBinding")
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == "team-a"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "alpha-s1mple", "namespace": "ops"}]
    resources = {r for rule in role["rules"] for r in rule["resources"]}
    assert not resources & {"namespaces", "customresourcedefinitions", "pods", "nodes"}
    (dep,) = by_kind(objs, "Deployment")
    assert "--namespace=team-a" in dep["spec"]["template"]["spec"]["containers"][0]["args"]


def test_cluster_mode_rules_are_the_generated_ones():
    objs = render()
    (role,) = by_kind(objs, "ClusterRole")
    rules = yaml.safe_load((CHART / "files" / "rbac-rules.yaml").read_text())
    assert role["rules"] == rules
    # secrets: read one by name, never list or watch
    secrets = [r for r in rules if "secrets" in r["resources"]]
    assert [r["verbs"] for r in secrets] == [["get"]]


def test_the_container_names_its_command():
    """With only args, a runtime that does not know the image's ENTRYPOINT runs `--liveness` itself
    (the test cluster's node agent did: "No such file or directory: '--liveness'")."""
    (dep,) = by_kind(render(), "Deployment")
    (container,) = dep["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["s1mple", "operator"]
    assert container["args"][0].startswith("--liveness=http://0.0.0.0:8080/")
    assert container["livenessProbe"]["httpGet"]["port"] == "health"


def test_values_reach_the_pod():
    objs = render(
        "alpha",
        "ops",
        "nodeSelector.pool=research",
        "tolerations[0].key=dedicated",
        "tolerations[0].operator=Exists",
        "podAnnotations.team=quant",
        "imagePullSecrets[0].name=regcred",
        "logFormat=json",
        "runner.image=registry.example/runner:1",
        "runner.allowedImages={registry.example/*,ghcr.io/s1mple/*}",
        "image.tag=9.9.9",
        "metrics.enabled=true",
        "metrics.serviceMonitor.enabled=true",
    )
    (dep,) = by_kind(objs, "Deployment")
    pod = dep["spec"]["template"]
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"pool": "research"}
    assert spec["tolerations"] == [{"key": "dedicated", "operator": "Exists"}]
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert pod["metadata"]["annotations"] == {"team": "quant"}
    (c,) = spec["containers"]
    assert c["image"] == "ghcr.io/s1mple/s1mple-operator:9.9.9"
    assert "--log-format=json" in c["args"] and "--metrics-port=9090" in c["args"]
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env["S1MPLE_RUNNER_IMAGE"] == "registry.example/runner:1"
    assert env["S1MPLE_ALLOWED_RUNNER_IMAGES"] == "registry.example/*,ghcr.io/s1mple/*"
    (svc,) = by_kind(objs, "Service")
    (monitor,) = by_kind(objs, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= svc["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == "metrics"
    assert not by_kind(render(), "ServiceMonitor")


def _without_helm_labels(obj: dict) -> dict:
    obj = copy.deepcopy(obj)
    for meta in (obj["metadata"], obj.get("spec", {}).get("template", {}).get("metadata", {})):
        for label in HELM_ONLY_LABELS:
            meta.get("labels", {}).pop(label, None)
    return obj


def test_config_deploy_is_the_chart_with_default_values():
    """config/deploy/ is what `helm template s1mple charts/s1mple -n s1mple-system` renders, less the
    labels only Helm sets (plus the namespace the chart leaves to `helm install --create-namespace`)."""
    plain = [
        d
        for f in sorted((ROOT / "config" / "deploy").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d and d["kind"] != "Namespace"
    ]
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    rendered = sorted((_without_helm_labels(o) for o in render()), key=key)
    assert sorted(plain, key=key) == rendered
