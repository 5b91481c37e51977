"""Render every kustomize target and check the manifests against the contract."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from nordflow_schemas.topics import TOPICS

Manifest = dict[str, Any]

K8S_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = K8S_DIR.parents[1]

# Every directory under services/ is a service to deploy (test_every_service_is_deployed).
SERVICES = tuple(sorted(p.parent.name for p in (REPO_ROOT / "services").glob("*/pyproject.toml")))
NAMESPACE = "nordflow"
IMAGE_REGISTRY = "ghcr.io/nordflow"
HTTP_PORT = 8080
# The uid the image creates and the Deployments run as.
SERVICE_UID = 10001
CONSUMES_ANNOTATION = "nordflow.io/consumes"
TMP_DIR = "/tmp"  # noqa: S108 - the path mounted as an emptyDir, not a file this test writes

# The ConfigMap every Deployment reads first, and the keys it holds for all services.
SHARED_CONFIG = "nordflow-config"
SHARED_CONFIG_KEYS = frozenset(
    {
        "KAFKA_BOOTSTRAP_SERVERS",
        "HTTP_PORT",
        "LOG_LEVEL",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_RESOURCE_ATTRIBUTES",
    }
)
# Each service's own ConfigMap, "<service>-config"; the components name everything after
# its OTEL_SERVICE_NAME.
SERVICE_CONFIG_KEYS = frozenset({"OTEL_SERVICE_NAME"})
EXTRA_CONFIG_KEYS = {
    "ledger-closer": frozenset({"CLOSING_DELAY_SECONDS"}),
    "control-panel": frozenset({"SESSION_COOKIE_SECURE"}),
}
SECRET_KEYS = {
    "erp-poller": frozenset({"DATABASE_URL", "ENCRYPTION_KEY"}),
    "mapper": frozenset({"DATABASE_URL", "PERSONAL_DATA_KEY"}),
    "factoring-gateway": frozenset({"DATABASE_URL", "ENCRYPTION_KEY", "PERSONAL_DATA_KEY"}),
    "distribution-router": frozenset({"DATABASE_URL", "PERSONAL_DATA_KEY"}),
    "ledger-closer": frozenset({"DATABASE_URL", "ENCRYPTION_KEY"}),
}
DEFAULT_SECRET_KEYS = frozenset({"DATABASE_URL"})
COMPONENTS = "../../components"
SECRET_LOOKING_KEY = re.compile(
    r"DATABASE_URL|ENCRYPTION_KEY|PERSONAL_DATA_KEY|TOKEN|PASSWORD|PASSWD|SECRET|PRIVATE_KEY|API_KEY|CREDENTIAL",
    re.IGNORECASE,
)
# user:password@ inside a URL
URL_WITH_PASSWORD = re.compile(r"://[^/\s:@]+:[^/\s@]+@")

# The topic contract comes from the schemas package (the single list of topics).
EXPECTED_PARTITIONS = {t.name: t.partitions for t in TOPICS}
COMPACTED = frozenset(t.name for t in TOPICS if t.compacted)
EXPECTED_CONSUMES = {
    svc: frozenset(t.name for t in TOPICS if svc in t.consumers) for svc in SERVICES
}
# Stateless Kafka consumers, scaled by an HPA (erp-poller, a scheduler, has fixed replicas).
# erp-poller is a scheduler: its consumer takes only operators' commands, and its replicas
# are fixed (scheduled work is claimed with database locks).
SCHEDULERS = frozenset({"erp-poller"})
AUTOSCALED = frozenset(
    svc for svc, topics in EXPECTED_CONSUMES.items() if topics and svc not in SCHEDULERS
)


# ---------------------------------------------------------------------------- helpers


def of_kind(manifests: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {m["metadata"]["name"]: m for m in manifests if m["kind"] == kind}


def one(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    found = of_kind(manifests, kind)
    assert name in found, f"no {kind} {name!r}; have {sorted(found)}"
    return found[name]


def pod_spec(deployment: Manifest) -> Manifest:
    return deployment["spec"]["template"]["spec"]


def main_container(deployment: Manifest) -> Manifest:
    name = deployment["metadata"]["name"]
    containers = {c["name"]: c for c in pod_spec(deployment)["containers"]}
    assert name in containers, f"{name}: no container named after the service"
    return containers[name]


def all_containers(deployment: Manifest) -> list[Manifest]:
    spec = pod_spec(deployment)
    return [*spec.get("initContainers", []), *spec["containers"]]


def config_maps_for(manifests: list[Manifest], service: str) -> list[Manifest]:
    """The ConfigMaps the service container reads, in envFrom order."""
    refs = [
        e["configMapRef"]["name"]
        for e in main_container(one(manifests, "Deployment", service)).get("envFrom", [])
        if "configMapRef" in e
    ]
    assert len(refs) == 2, f"{service}: expected the shared and its own configMapRef: {refs}"
    return [one(manifests, "ConfigMap", name) for name in refs]


def shared_config_map(manifests: list[Manifest], service: str) -> Manifest:
    return config_maps_for(manifests, service)[0]


def config_map_for(manifests: list[Manifest], service: str) -> Manifest:
    """The service's own ConfigMap."""
    return config_maps_for(manifests, service)[1]


def settings_for(manifests: list[Manifest], service: str) -> dict[str, str]:
    """The settings the service container gets from ConfigMaps (a later source wins)."""
    settings: dict[str, str] = {}
    for config_map in config_maps_for(manifests, service):
        settings.update(config_map.get("data", {}))
    return settings


def service_kustomization(svc: str) -> Manifest:
    path = K8S_DIR / "base" / svc / "kustomization.yaml"
    assert path.is_file(), f"{svc}: no {path.relative_to(REPO_ROOT)} (see deploy/k8s/README.md)"
    loaded: Manifest = yaml.safe_load(path.read_text())
    return loaded


def topic_name(topic: Manifest) -> str:
    return str(topic["spec"].get("topicName", topic["metadata"]["name"]))


def topic_partitions(manifests: list[Manifest]) -> dict[str, int]:
    return {
        topic_name(t): int(t["spec"]["partitions"])
        for t in of_kind(manifests, "KafkaTopic").values()
    }


def quantity(value: str | int | float) -> Decimal:
    """A Kubernetes resource quantity as a number (cores or bytes)."""
    text = str(value)
    suffixes = {
        "m": Decimal("0.001"),
        "Ki": Decimal(2**10),
        "Mi": Decimal(2**20),
        "Gi": Decimal(2**30),
        "k": Decimal(10**3),
        "M": Decimal(10**6),
        "G": Decimal(10**9),
    }
    for suffix, factor in suffixes.items():
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * factor
    return Decimal(text)


def image_parts(image: str) -> tuple[str, str | None, str | None]:
    """(repository, tag, digest) of an image reference."""
    digest = None
    if "@" in image:
        image, digest = image.split("@", 1)
    repo, _, tag = image.rpartition(":")
    if not repo or "/" in tag:
        return image, None, digest
    return repo, tag, digest


# ---------------------------------------------------------------------------- every target


def test_every_object_is_named_labelled_and_namespaced(manifests: list[Manifest]) -> None:
    seen: set[tuple[str, str]] = set()
    for m in manifests:
        kind, name = m["kind"], m["metadata"]["name"]
        assert (kind, name) not in seen, f"duplicate {kind} {name}"
        seen.add((kind, name))
        labels = m["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "nordflow", f"{kind} {name}: part-of"
        if kind == "Namespace":
            assert name == NAMESPACE
        else:
            assert m["metadata"].get("namespace") == NAMESPACE, f"{kind} {name}: namespace"
    assert ("Namespace", NAMESPACE) in seen


def test_names_are_consistent_across_resources(manifests: list[Manifest]) -> None:
    for svc in SERVICES:
        deployment = one(manifests, "Deployment", svc)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector == {"app.kubernetes.io/name": svc}
        assert selector.items() <= pod_labels.items()

        assert pod_spec(deployment)["serviceAccountName"] == svc
        account = one(manifests, "ServiceAccount", svc)
        assert account.get("automountServiceAccountToken") is False
        assert pod_spec(deployment).get("automountServiceAccountToken") is False

        service = one(manifests, "Service", svc)
        assert service["spec"]["selector"] == selector
        assert [p["targetPort"] for p in service["spec"]["ports"]] == ["http"]

        for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget"):
            labels = one(manifests, kind, svc)["metadata"]["labels"]
            assert labels.get("app.kubernetes.io/name") == svc, f"{kind} {svc}: name label"

        config = config_map_for(manifests, svc)["data"]
        assert config["OTEL_SERVICE_NAME"] == svc

        container = main_container(deployment)
        repo, _, _ = image_parts(container["image"])
        assert repo == f"{IMAGE_REGISTRY}/{svc}"
        assert container["args"] == ["run"]
        assert "command" not in container, "the image ENTRYPOINT is the service's console script"


def test_migrations_run_in_an_init_container(manifests: list[Manifest]) -> None:
    for svc in SERVICES:
        deployment = one(manifests, "Deployment", svc)
        inits = pod_spec(deployment).get("initContainers", [])
        assert [c["args"] for c in inits] == [["migrate"]], svc
        assert inits[0]["image"] == main_container(deployment)["image"], svc
        assert inits[0]["envFrom"] == main_container(deployment)["envFrom"], svc


def test_probes_use_healthz_and_readyz_on_the_http_port(manifests: list[Manifest]) -> None:
    for svc in SERVICES:
        container = main_container(one(manifests, "Deployment", svc))
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert ports == {"http": HTTP_PORT}, svc
        expected = {
            "livenessProbe": "/healthz",
            "readinessProbe": "/readyz",
            "startupProbe": "/healthz",
        }
        for probe, path in expected.items():
            assert probe in container, f"{svc}: no {probe}"
            get = container[probe]["httpGet"]
            assert get["path"] == path, f"{svc}: {probe} path {get['path']}"
            port = ports.get(get["port"], get["port"])
            assert port == HTTP_PORT, f"{svc}: {probe} port {get['port']}"
        assert int(settings_for(manifests, svc)["HTTP_PORT"]) == HTTP_PORT


def test_prometheus_scrapes_metrics(manifests: list[Manifest]) -> None:
    for svc in SERVICES:
        annotations = one(manifests, "Deployment", svc)["spec"]["template"]["metadata"][
            "annotations"
        ]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/path"] == "/metrics"
        assert int(annotations["prometheus.io/port"]) == HTTP_PORT


def test_every_container_has_requests_and_limits(manifests: list[Manifest]) -> None:
    for svc in SERVICES:
        for c in all_containers(one(manifests, "Deployment", svc)):
            res = c.get("resources", {})
            for resource in ("cpu", "memory"):
                request = res.get("requests", {}).get(resource)
                limit = res.get("limits", {}).get(resource)
                assert request is not None, f"{svc}/{c['name']}: no {resource} request"
                assert limit is not None, f"{svc}/{c['name']}: no {resource} limit"
                assert quantity(request) <= quantity(limit), f"{svc}/{c['name']}: {resource}"


def test_pods_are_locked_down(manifests: list[Manifest]) -> None:
    for svc in SERVICES:
        deployment = one(manifests, "Deployment", svc)
        spec = pod_spec(deployment)
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True, svc
        assert pod.get("seccompProfile", {}).get("type") == "RuntimeDefault", svc
        assert spec.get("terminationGracePeriodSeconds", 30) >= 30, svc
        tmp_volumes = {v["name"] for v in spec.get("volumes", []) if "emptyDir" in v}
        for c in all_containers(deployment):
            where = f"{svc}/{c['name']}"
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("runAsNonRoot", pod.get("runAsNonRoot")) is True, where
            assert sc.get("runAsUser", pod.get("runAsUser")) == SERVICE_UID, where
            assert "ALL" in sc.get("capabilities", {}).get("drop", []), where
            assert not sc.get("capabilities", {}).get("add"), where
            assert not sc.get("privileged", False), where
            seccomp = sc.get("seccompProfile", pod.get("seccompProfile", {}))
            assert seccomp.get("type") == "RuntimeDefault", where
            # A read-only root filesystem needs a writable /tmp.
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            assert mounts.get(TMP_DIR) in tmp_volumes, f"{where}: no emptyDir at {TMP_DIR}"


def test_env_comes_from_generated_configmap_and_secret(
    target: str, manifests: list[Manifest]
) -> None:
    secrets = of_kind(manifests, "Secret")
    for svc in SERVICES:
        for c in all_containers(one(manifests, "Deployment", svc)):
            env_from = c.get("envFrom", [])
            kinds = [next(iter(e)) for e in env_from]
            # Shared settings, then the service's own (which may override them), then secrets.
            expected = ["configMapRef", "configMapRef", "secretRef"]
            assert kinds == expected, f"{svc}/{c['name']}: {kinds}"
            assert not c.get("env"), f"{svc}/{c['name']}: settings belong in the ConfigMap/Secret"

        shared, own = (m["metadata"]["name"] for m in config_maps_for(manifests, svc))
        # A generated name carries a content hash, so a config change rolls the pods.
        assert re.fullmatch(rf"{SHARED_CONFIG}-[a-z0-9]{{10}}", shared), shared
        assert re.fullmatch(rf"{svc}-config-[a-z0-9]{{10}}", own), own

        secret_ref = next(
            e["secretRef"]
            for e in main_container(one(manifests, "Deployment", svc))["envFrom"]
            if "secretRef" in e
        )
        assert secret_ref.get("optional") is not True, f"{svc}: the Secret is required"
        if target == "overlays/dev":
            assert secret_ref["name"] in secrets, f"{svc}: dev Secret {secret_ref['name']} missing"
            expected_keys = SECRET_KEYS.get(svc, DEFAULT_SECRET_KEYS)
            assert set(secrets[secret_ref["name"]]["data"]) == expected_keys, svc
        else:
            # Supplied by the environment under this exact name (see README).
            assert secret_ref["name"] == f"{svc}-secrets"


@pytest.mark.parametrize("target", ["base", "overlays/prod"])
def test_no_secret_values_are_committed_outside_dev(target: str, render: Any) -> None:
    # Only the dev overlay generates (fake) Secrets; elsewhere they come from a secret store.
    assert not of_kind(render(target), "Secret"), f"{target} renders Secret values"


def test_configmaps_hold_settings_and_no_secrets(target: str, manifests: list[Manifest]) -> None:
    for name, config_map in of_kind(manifests, "ConfigMap").items():
        for key, value in config_map.get("data", {}).items():
            assert not SECRET_LOOKING_KEY.search(key), f"ConfigMap {name}: secret-looking key {key}"
            assert not URL_WITH_PASSWORD.search(str(value)), (
                f"ConfigMap {name}: {key} has a password"
            )
    shared_names = set()
    for svc in SERVICES:
        shared = shared_config_map(manifests, svc)
        shared_names.add(shared["metadata"]["name"])
        assert set(shared["data"]) == SHARED_CONFIG_KEYS, svc
        # Kafka and OTLP settings live once, in the shared ConfigMap, not in per-service copies.
        own = config_map_for(manifests, svc)["data"]
        expected = SERVICE_CONFIG_KEYS | EXTRA_CONFIG_KEYS.get(svc, frozenset())
        assert set(own) == expected, f"{svc}: {sorted(set(own) ^ expected)}"
        settings = settings_for(manifests, svc)
        assert settings["KAFKA_BOOTSTRAP_SERVERS"], svc
        assert "service.namespace=nordflow" in settings["OTEL_RESOURCE_ATTRIBUTES"], svc
    assert len(shared_names) == 1, f"one shared ConfigMap for every service: {shared_names}"
    delay = int(settings_for(manifests, "ledger-closer")["CLOSING_DELAY_SECONDS"])
    if target == "overlays/dev":
        assert delay <= 600
    else:
        assert delay == 86400


def test_every_topic_exists_as_a_kafkatopic(target: str, manifests: list[Manifest]) -> None:
    topics = of_kind(manifests, "KafkaTopic")
    assert topic_partitions(manifests) == EXPECTED_PARTITIONS
    replicas = 1 if target == "overlays/dev" else 3
    for name, topic in topics.items():
        assert topic["apiVersion"] == "kafka.strimzi.io/v1beta2", name
        assert topic["metadata"]["labels"].get("strimzi.io/cluster") == "nordflow", name
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), f"{name}: not a DNS name"
        spec = topic["spec"]
        assert spec["replicas"] == replicas, name
        min_isr = int(spec["config"]["min.insync.replicas"])
        assert min_isr == (1 if replicas == 1 else 2), name
        assert min_isr <= spec["replicas"], name
        policy = spec["config"]["cleanup.policy"]
        if name in COMPACTED:
            assert policy == "compact", name  # the newest record per key is kept for ever
        else:
            assert policy == "delete", name
            assert int(spec["config"]["retention.ms"]) > 0, name


def test_consumed_topics_match_the_topic_map(manifests: list[Manifest]) -> None:
    for svc in SERVICES:
        annotations = one(manifests, "Deployment", svc)["metadata"].get("annotations", {})
        declared = frozenset(filter(None, annotations.get(CONSUMES_ANNOTATION, "").split(",")))
        assert declared == EXPECTED_CONSUMES[svc], f"{svc}: {CONSUMES_ANNOTATION}"


def consumed_partitions(service: str) -> int | None:
    """The fewest partitions among the topics the service consumes (None: it consumes none).

    Read from nordflow_schemas.topics, so the bound follows the code when a topic, its
    partition count or its consumers change.
    """
    counts = [spec.partitions for spec in TOPICS if service in spec.consumers]
    return min(counts) if counts else None


def test_consumers_never_scale_beyond_their_partitions(
    target: str, manifests: list[Manifest]
) -> None:
    # A consumer group cannot use more members than the partitions it reads; members beyond
    # that sit idle. Holds for the HPA's maximum and for fixed replicas alike.
    hpas = of_kind(manifests, "HorizontalPodAutoscaler")
    for svc in SERVICES:
        limit = consumed_partitions(svc)
        if limit is None:
            assert svc not in hpas, f"{svc}: autoscaled but consumes nothing"
            continue
        replicas = one(manifests, "Deployment", svc)["spec"].get("replicas")
        if svc in hpas:
            low, high = hpas[svc]["spec"]["minReplicas"], hpas[svc]["spec"]["maxReplicas"]
            assert 1 <= low <= high <= limit, f"{svc}: {low}..{high} replicas, {limit} partitions"
        else:
            assert replicas is not None, f"{svc}: neither an HPA nor fixed replicas"
        if replicas is not None:
            assert replicas <= limit, f"{svc}: {replicas} replicas, {limit} partitions"


def test_stateless_consumers_are_autoscaled(target: str, manifests: list[Manifest]) -> None:
    hpas = of_kind(manifests, "HorizontalPodAutoscaler")
    expected = set() if target == "overlays/dev" else set(AUTOSCALED)
    assert set(hpas) == expected
    for name, hpa in hpas.items():
        ref = hpa["spec"]["scaleTargetRef"]
        assert (ref["apiVersion"], ref["kind"], ref["name"]) == ("apps/v1", "Deployment", name)
        assert hpa["metadata"]["labels"].get("app.kubernetes.io/name") == name
        deployment = one(manifests, "Deployment", name)
        # A replicas field would fight the HPA on every apply.
        assert "replicas" not in deployment["spec"], f"{name}: replicas set despite the HPA"


def test_every_service_has_a_disruption_budget(manifests: list[Manifest]) -> None:
    for svc in SERVICES:
        pdb = one(manifests, "PodDisruptionBudget", svc)
        pod_labels = one(manifests, "Deployment", svc)["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        # maxUnavailable lets a node drain even a single-replica deployment.
        assert int(pdb["spec"].get("maxUnavailable", 0)) >= 1, svc


# ---------------------------------------------------------------------------- per overlay


def test_dev_runs_one_replica_each(render: Any) -> None:
    deployments = of_kind(render("overlays/dev"), "Deployment")
    assert {n: d["spec"].get("replicas") for n, d in deployments.items()} == dict.fromkeys(
        SERVICES, 1
    )


def test_dev_is_smaller_than_prod(render: Any) -> None:
    def memory_limit(target: str, svc: str) -> Decimal:
        container = main_container(one(render(target), "Deployment", svc))
        return quantity(container["resources"]["limits"]["memory"])

    for svc in SERVICES:
        assert memory_limit("overlays/dev", svc) < memory_limit("overlays/prod", svc), svc


def test_prod_pins_every_image(render: Any) -> None:
    for svc in SERVICES:
        for c in all_containers(one(render("overlays/prod"), "Deployment", svc)):
            _, tag, digest = image_parts(c["image"])
            assert digest or (tag and tag not in {"latest", "dev", "main"}), c["image"]


def test_prod_runs_redundant_replicas(render: Any) -> None:
    manifests = render("overlays/prod")
    assert one(manifests, "Deployment", "erp-poller")["spec"]["replicas"] >= 2
    for name, hpa in of_kind(manifests, "HorizontalPodAutoscaler").items():
        assert hpa["spec"]["minReplicas"] >= 2, name


# ---------------------------------------------------------------------------- services


def test_every_service_is_deployed() -> None:
    base = yaml.safe_load((K8S_DIR / "base" / "kustomization.yaml").read_text())
    missing = sorted(set(SERVICES) - set(base["resources"]))
    assert not missing, f"add {missing} to deploy/k8s/base (see deploy/k8s/README.md)"


@pytest.mark.parametrize("svc", SERVICES)
def test_service_base_is_the_shared_component_plus_its_specifics(svc: str) -> None:
    kustomization = service_kustomization(svc)
    components = kustomization.get("components", [])
    assert components[:1] == [f"{COMPONENTS}/service"], f"{svc}: components/service first"
    assert not kustomization.get("resources"), f"{svc}: resources belong in the components"
    autoscaled = f"{COMPONENTS}/autoscaled" in components
    assert autoscaled == (svc in AUTOSCALED), f"{svc}: components/autoscaled iff a consumer"
    # The components read the service's name from the one ConfigMap generated here.
    [config] = kustomization.get("configMapGenerator", [])
    assert config["name"] == f"{svc}-config"
    assert f"OTEL_SERVICE_NAME={svc}" in config["literals"]
    images = {i["name"]: i for i in kustomization.get("images", [])}
    assert images["SERVICE"]["newName"] == f"{IMAGE_REGISTRY}/{svc}", svc
