"""The Helm chart: it lints and renders with both values files (Helm's Go SDK via helm-python-sdk), every
rendered object validates against the Kubernetes schemas (kubernetes-validate, offline), every workload
has probes, resources and a non-root security context, and the checked-in manifests are current."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import helm_python as helm
import jsonschema
import kubernetes_validate
import pytest
import yaml

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy/k8s/helm/pickwise"
ENVIRONMENTS = ("local", "gke")
KUBERNETES_VERSION = "1.32.0"
STATELESS = {"gateway", "retriever", "reranker", "generator", "session"}
SERVICES = STATELESS | {"event-consumer", "monitor"}
REGISTRY = "mlflow"  # the MLflow tracking server (decision 1002): a Deployment of its own, probes on /health

# Custom resources have no schema in Kubernetes itself: these are the fields of their published CRDs that
# the chart uses (External Secrets Operator v1beta1, GKE ManagedCertificate v1, FrontendConfig v1beta1).
CRD_SCHEMAS = {
    ("external-secrets.io/v1beta1", "ExternalSecret"): {
        "type": "object", "required": ["spec"],
        "properties": {"spec": {
            "type": "object", "required": ["secretStoreRef", "target", "data"], "additionalProperties": False,
            "properties": {
                "refreshInterval": {"type": "string", "pattern": r"^\d+[smh]$"},
                "secretStoreRef": {"type": "object", "required": ["name", "kind"], "additionalProperties": False,
                                   "properties": {"name": {"type": "string"},
                                                  "kind": {"enum": ["SecretStore", "ClusterSecretStore"]}}},
                "target": {"type": "object", "required": ["name"],
                           "properties": {"name": {"type": "string"},
                                          "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]}}},
                "data": {"type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["secretKey", "remoteRef"], "additionalProperties": False,
                    "properties": {"secretKey": {"type": "string"},
                                   "remoteRef": {"type": "object", "required": ["key"],
                                                 "properties": {"key": {"type": "string"}}}}}},
            }}},
    },
    ("networking.gke.io/v1", "ManagedCertificate"): {
        "type": "object", "required": ["spec"],
        "properties": {"spec": {"type": "object", "required": ["domains"], "additionalProperties": False,
                                "properties": {"domains": {"type": "array", "minItems": 1, "maxItems": 100,
                                                           "items": {"type": "string", "maxLength": 63}}}}},
    },
    ("networking.gke.io/v1beta1", "FrontendConfig"): {
        "type": "object", "required": ["spec"],
        "properties": {"spec": {"type": "object", "additionalProperties": False, "properties": {
            "redirectToHttps": {"type": "object", "properties": {"enabled": {"type": "boolean"}}},
            "sslPolicy": {"type": "string"}}}},
    },
}


def _render_module():
    spec = importlib.util.spec_from_file_location("pickwise_k8s_render", REPO / "deploy/k8s/render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_module = _render_module()


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def rendered(request) -> tuple[str, list[dict]]:
    files = render_module.render(request.param)
    objects = [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]
    return request.param, objects


def _of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def _component(obj: dict) -> str:
    return obj["metadata"]["labels"]["app.kubernetes.io/component"]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_chart_lints_clean_with_each_values_file(env) -> None:
    values = helm.values_from_yaml((CHART / f"values-{env}.yaml").read_text())
    report = helm.lint(str(CHART), values, strict=True, namespace="pickwise", kube_version=f"v{KUBERNETES_VERSION}")
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_lint_reports_a_broken_chart(tmp_path) -> None:
    broken = tmp_path / "pickwise"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "broken.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.nope.nested }}\n")
    report = helm.lint(str(broken), strict=True)
    assert report["errors"] or [m for m in report["messages"] if m["severity"] >= 3]


def test_every_rendered_object_validates_against_the_kubernetes_schemas(rendered) -> None:
    env, objects = rendered
    assert objects
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in CRD_SCHEMAS:
            jsonschema.validate(obj, CRD_SCHEMAS[key])
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_schema_validation_rejects_a_misspelt_field() -> None:
    deployment = _of_kind(_render_objects("local"), "Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def _render_objects(env: str) -> list[dict]:
    return [doc for text in render_module.render(env).values() for doc in yaml.safe_load_all(text) if doc]


def test_every_workload_has_probes_resources_and_a_non_root_security_context(rendered) -> None:
    env, objects = rendered
    workloads = _of_kind(objects, "Deployment") + _of_kind(objects, "Job")
    assert {_component(w) for w in workloads} == SERVICES | {"ingest", REGISTRY}
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"] + pod.get("initContainers", []):
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False
            assert security["readOnlyRootFilesystem"] is True
            assert security["capabilities"]["drop"] == ["ALL"]
            if _component(workload) == REGISTRY:
                assert container["readinessProbe"]["httpGet"]["path"] == "/health"
                assert container["livenessProbe"]["httpGet"]["path"] == "/health"
            elif workload["kind"] == "Deployment" and container in pod["containers"]:
                assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
                assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_stateless_services_autoscale_and_every_service_has_a_disruption_budget(rendered) -> None:
    env, objects = rendered
    deployments = {d["metadata"]["name"]: d for d in _of_kind(objects, "Deployment")}
    hpas = _of_kind(objects, "HorizontalPodAutoscaler")
    assert {_component(h) for h in hpas} == STATELESS
    for hpa in hpas:
        assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    pdbs = _of_kind(objects, "PodDisruptionBudget")
    assert {_component(p) for p in pdbs} == SERVICES
    for pdb in pdbs:
        target = deployments[pdb["metadata"]["name"]]
        pod_labels = target["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_services_route_to_their_pods_and_the_config_names_them(rendered) -> None:
    env, objects = rendered
    config = _of_kind(objects, "ConfigMap")[0]["data"]
    deployments = {_component(d): d for d in _of_kind(objects, "Deployment")}
    for service in _of_kind(objects, "Service"):
        name = _component(service)
        pod_labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= pod_labels.items()
        port = service["spec"]["ports"][0]["port"]
        if name == REGISTRY:
            assert config["PICKWISE_MLFLOW_TRACKING_URI"] == f"http://{service['metadata']['name']}:{port}"
            continue
        assert config[f"PICKWISE_{name.upper().replace('-', '_')}_URL"] == f"http://{service['metadata']['name']}:{port}"
    assert config["PICKWISE_KAFKA_IDEMPOTENCE"] == "true"
    assert config["PICKWISE_OTEL_EXPORTER"] == "otlp"


def test_the_retriever_waits_for_the_catalog_the_job_loads(rendered) -> None:
    env, objects = rendered
    retriever = next(d for d in _of_kind(objects, "Deployment") if _component(d) == "retriever")
    init = retriever["spec"]["template"]["spec"]["initContainers"][0]
    compile(init["args"][0], "wait-for-catalog", "exec")  # the inline script is valid Python
    assert "FROM catalog_state" in init["args"][0]
    assert {e["name"] for e in init["env"]} >= {"PICKWISE_POSTGRES_URL"}


def test_the_monitor_runs_the_pipelines_app_as_one_replica(rendered) -> None:
    env, objects = rendered
    monitor = next(d for d in _of_kind(objects, "Deployment") if _component(d) == "monitor")
    container = monitor["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "pickwise_common.serve", "pickwise_pipeline.monitor:create_app"]
    assert monitor["spec"]["replicas"] == 1


def test_the_ingest_job_runs_the_pipeline(rendered) -> None:
    env, objects = rendered
    job = _of_kind(objects, "Job")[0]
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] + container["args"] == ["python", "-m", "pickwise_pipeline", "ingest", "--all",
                                                         "--if-changed"]


def test_gke_values_use_workload_identity_secret_manager_managed_certificate_and_node_pools() -> None:
    objects = _render_objects("gke")
    account = _of_kind(objects, "ServiceAccount")[0]
    gcp_account = account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert gcp_account.endswith(".iam.gserviceaccount.com")
    assert _of_kind(objects, "Secret") == []  # no secret values in the manifests
    external = _of_kind(objects, "ExternalSecret")[0]
    assert external["spec"]["target"]["name"] == "pickwise-secrets"
    ingress = _of_kind(objects, "Ingress")[0]
    certificate = _of_kind(objects, "ManagedCertificate")[0]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["networking.gke.io/managed-certificates"] == certificate["metadata"]["name"]
    assert certificate["spec"]["domains"] == [ingress["spec"]["rules"][0]["host"]]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"]
    assert backend == "pickwise-gateway"
    for deployment in _of_kind(objects, "Deployment"):
        assert deployment["spec"]["template"]["spec"]["nodeSelector"] == {"pickwise.io/pool": "services"}


def test_the_checked_in_manifests_match_a_fresh_render() -> None:
    result = subprocess.run([sys.executable, str(REPO / "deploy/k8s/render.py"), "--check"], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr


def test_a_stale_manifest_is_detected(tmp_path) -> None:
    copy = tmp_path / "local"
    shutil.copytree(REPO / "deploy/k8s/manifests/local", copy)
    (copy / "hpa.yaml").write_text((copy / "hpa.yaml").read_text().replace("maxReplicas: 3", "maxReplicas: 4"))
    (copy / "leftover.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: old}\n")
    assert render_module.stale("local", copy) == ["hpa.yaml", "leftover.yaml"]


# ---------------------------------------------------------------- least privilege (issue 14, point 4)

SECRET_ENV = {
    "gateway": {"PICKWISE_API_KEYS"},
    "retriever": {"PICKWISE_POSTGRES_URL", "PICKWISE_MILVUS_TOKEN"},
    "reranker": {"PICKWISE_ADMIN_KEY"},
    "generator": {"PICKWISE_GROQ_API_KEY", "PICKWISE_OPENAI_API_KEY"},
    "session": {"PICKWISE_POSTGRES_URL"},
    "event-consumer": {"PICKWISE_POSTGRES_URL"},
    "monitor": {"PICKWISE_POSTGRES_URL"},
    "ingest": {"PICKWISE_POSTGRES_URL", "PICKWISE_MILVUS_TOKEN"},
    REGISTRY: {"PICKWISE_POSTGRES_URL"},  # it creates its database, then derives its own URL from this one
}
SERVICE_PORTS = {"gateway": 8000, "retriever": 8001, "reranker": 8002, "generator": 8003, "session": 8004,
                 "event-consumer": 8005}


def _render_with(env: str, **overrides: dict) -> list[dict]:
    values = render_module.values_for(env)
    for key, value in overrides.items():
        values[key] = {**values.get(key, {}), **value}
    with helm.Chart.load(CHART) as chart:
        files = chart.render(values=values, name="pickwise", namespace="pickwise", is_install=True)
    return [doc for name, text in files.items() if not name.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


def _secret_env(container: dict) -> set[str]:
    return {e["name"] for e in container.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})}


def test_each_container_gets_only_the_secrets_it_needs(rendered) -> None:
    env, objects = rendered
    for workload in _of_kind(objects, "Deployment") + _of_kind(objects, "Job"):
        pod = workload["spec"]["template"]["spec"]
        assert _secret_env(pod["containers"][0]) == SECRET_ENV[_component(workload)], _component(workload)
        for init in pod.get("initContainers", []):
            assert _secret_env(init) == {"PICKWISE_POSTGRES_URL"}


def test_every_component_runs_as_its_own_service_account(rendered) -> None:
    env, objects = rendered
    accounts = {a["metadata"]["name"]: a for a in _of_kind(objects, "ServiceAccount")}
    assert set(accounts) == {f"pickwise-{c}" for c in SERVICES | {"ingest", REGISTRY}}
    for workload in _of_kind(objects, "Deployment") + _of_kind(objects, "Job"):
        assert workload["spec"]["template"]["spec"]["serviceAccountName"] == f"pickwise-{_component(workload)}"
    assert all(a["automountServiceAccountToken"] is False for a in accounts.values())


def test_gke_renders_default_deny_then_gateway_to_internal_and_internal_to_stores() -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in _of_kind(_render_objects("gke"), "NetworkPolicy")}
    deny = policies.pop("pickwise-default-deny")
    assert deny["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "pickwise",
                                                  "app.kubernetes.io/instance": "pickwise"}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"} and "ingress" not in deny and "egress" not in deny
    dns = policies.pop("pickwise-dns-and-telemetry")
    assert {(p["protocol"], p["port"]) for rule in dns["egress"] for p in rule["ports"]} >= {("UDP", 53), ("TCP", 53)}
    assert set(policies) == {f"pickwise-{c}" for c in SERVICES | {"ingest", REGISTRY}}

    def peers(rules: list[dict], port: int) -> list[dict]:
        return [peer for rule in rules if any(p["port"] == port for p in rule["ports"])
                for peer in rule.get("from", [])]

    gateway_pods = {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "pickwise",
                                                    "app.kubernetes.io/instance": "pickwise",
                                                    "app.kubernetes.io/component": "gateway"}}}
    for internal in ("retriever", "reranker", "generator", "session"):
        spec = policies[f"pickwise-{internal}"]
        allowed = peers(spec["ingress"], SERVICE_PORTS[internal])
        assert gateway_pods in allowed
        assert all(p == gateway_pods or "namespaceSelector" in p for p in allowed), allowed  # + the scraper only
        callee_ports = {p["port"] for rule in spec["egress"] for p in rule["ports"]} & set(SERVICE_PORTS.values())
        assert callee_ports == set(), f"{internal} may call {callee_ports}"
    gateway_egress = {p["port"] for rule in policies["pickwise-gateway"]["egress"] for p in rule["ports"]}
    assert gateway_egress == {8001, 8002, 8003, 8004, 9092, 6379}
    assert gateway_pods not in peers(policies["pickwise-event-consumer"]["ingress"], 8005)  # nobody calls it
    store_ports = {c: {p["port"] for rule in policies[f"pickwise-{c}"]["egress"] for p in rule["ports"]}
                   for c in ("retriever", "session", "event-consumer", "ingest")}
    assert store_ports == {"retriever": {5432, 6379, 19530, 5000}, "session": {5432, 6379},
                           "event-consumer": {9092, 5432, 6379}, "ingest": {5432, 6379, 19530}}
    # the registry: reached by the components that load or move models, and it reaches only Postgres
    registry = policies[f"pickwise-{REGISTRY}"]
    clients = {p["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in peers(registry["ingress"], 5000)}
    assert clients == {"retriever", "reranker", "monitor"}
    assert {p["port"] for rule in registry["egress"] for p in rule["ports"]} == {5432}
    assert "ingress" not in policies["pickwise-ingest"]  # a Job takes no connections


def _ingress_paths(objects: list[dict]) -> set[tuple[str, str]]:
    ingress = _of_kind(objects, "Ingress")[0]
    return {(p["path"], p["pathType"]) for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}


def test_ingress_publishes_only_the_page_the_api_and_the_docs() -> None:
    assert _ingress_paths(_render_objects("gke")) == {("/", "Exact"), ("/static", "Prefix"), ("/v1", "Prefix"),
                                                      ("/docs", "Prefix"), ("/openapi.json", "Exact")}
    without_docs = _render_with("gke", ingress={"exposeDocs": False})
    assert _ingress_paths(without_docs) == {("/", "Exact"), ("/static", "Prefix"), ("/v1", "Prefix")}
    assert _of_kind(_render_with("local", ingress={"enabled": False}), "Ingress") == []


def test_the_ingest_job_is_a_post_install_and_post_upgrade_hook(rendered) -> None:
    env, objects = rendered
    annotations = _of_kind(objects, "Job")[0]["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"post-install", "post-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"].split(",")


def test_gke_pulls_every_image_by_digest_and_local_by_tag() -> None:
    def images(objects: list[dict]) -> set[str]:
        return {c["image"] for w in _of_kind(objects, "Deployment") + _of_kind(objects, "Job")
                for c in w["spec"]["template"]["spec"]["containers"] + w["spec"]["template"]["spec"].get(
                    "initContainers", [])}

    gke = images(_render_objects("gke"))
    assert gke and all(re.fullmatch(r"[a-z0-9./-]+/pickwise@sha256:[0-9a-f]{64}", i) for i in gke), gke
    assert images(_render_objects("local")) == {"pickwise:dev"}
