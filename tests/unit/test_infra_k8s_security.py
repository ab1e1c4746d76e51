"""The Kubernetes manifests' security properties, read from infra/k8s without a cluster.

- Pod Security: both namespaces enforce `restricted`; every workload (Kafka, the Jobs, the Flink pods of the
  FlinkDeployment, the Spark executor template, the Airflow chart's values) meets it; resources on every container.
- NetworkPolicies: default deny in each namespace, and every selector matches the labels a workload carries.
- RBAC: who may create pods where, no role reads Secrets, tokens only where a pod calls the API.
- Flink REST: mutual TLS with cert-manager's keystores; Airflow holds a client certificate of the same CA.
- Kafka: SASL_SSL on every listener, deny by default; every client pod with the CA at one path; each workload
  with the passwords of its own principals only; `hdp kafka setup` for topics, users and ACLs.
- Airflow: Airflow 3's secret keys, the FAB auth manager.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

# Generated projects without infra/ have no test_infra.py either (copier.yml).
pytest.importorskip("test_infra", reason="this project has no infra/ (generated target)")
from test_infra import (
    HELM_VALUES,
    K8S_DIR,
    K8S_MANIFESTS,
    KEYSTORE_PASSWORD,
    KEYSTORE_PASSWORD_FIELDS,
    kafka_broker_problems,
    kafka_image_properties,
    load_yaml_documents,
    manifest_errors,
    properties_text,
    scram_format_arguments,
    script_exports,
    walk,
)

from hybrid_platform import kafka_auth

if not K8S_DIR.is_dir():
    pytest.skip("this project has no infra/k8s (generated target)", allow_module_level=True)

NAMESPACE = "hdp"
SPARK_NAMESPACE = "hdp-spark"
#: The Airflow chart's pod labels (tier/component/release) with the release name values.yaml assumes.
AIRFLOW_RELEASE = "airflow"
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer", "worker", "run-airflow-migrations")
#: Pods of namespaces this repository does not deploy, and the labels their charts give them: CoreDNS
#: (k8s-app=kube-dns on kubeadm, EKS, GKE, AKS) and the Flink Kubernetes Operator's Helm chart
#: (app.kubernetes.io/name = its chart name).
EXTERNAL_PODS: dict[str, list[dict[str, str]]] = {
    "kube-system": [{"k8s-app": "kube-dns"}],
    "flink-operator": [{"app.kubernetes.io/name": "flink-kubernetes-operator"}],
    "ingress-nginx": [{}],
}


def documents() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in K8S_MANIFESTS:
        for document in load_yaml_documents(path):
            yield path, document


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for _, d in documents() if d["kind"] == kind]


def namespace_of(path: Path, document: dict[str, Any]) -> str:
    """The namespace kustomize gives an object: its own, else its kustomization's."""
    if "namespace" in document["metadata"]:
        return str(document["metadata"]["namespace"])
    kustomization = yaml.safe_load((path.parent / "kustomization.yaml").read_text())
    return str(kustomization.get("namespace", "default"))


def helm_values() -> dict[str, Any]:
    return dict(yaml.safe_load(HELM_VALUES.read_text()))


def flink_deployment() -> dict[str, Any]:
    return load_yaml_documents(K8S_DIR / "flink" / "flinkdeployment.yaml")[0]


def spark_conf() -> dict[str, str]:
    data = load_yaml_documents(K8S_DIR / "spark" / "spark-defaults.yaml")[0]["data"]
    lines = data["spark-defaults.conf"].splitlines()
    return dict(line.split(None, 1) for line in lines if line.strip() and not line.lstrip().startswith("#"))


def executor_template() -> dict[str, Any]:
    data = load_yaml_documents(K8S_DIR / "spark" / "spark-defaults.yaml")[0]["data"]
    return dict(yaml.safe_load(data["executor-pod-template.yaml"]))


def merge_pod_templates(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """The operator's merge of spec.podTemplate and jobManager.podTemplate: containers and volumes by name."""
    merged = copy.deepcopy(base)
    merged["metadata"].setdefault("labels", {}).update(overlay.get("metadata", {}).get("labels", {}))
    spec, extra = merged["spec"], overlay.get("spec", {})
    for key in ("volumes", "containers"):
        by_name = {item["name"]: item for item in spec.get(key, [])}
        for item in extra.get(key, []):
            if item["name"] in by_name:
                target = by_name[item["name"]]
                for field, value in item.items():
                    if isinstance(value, list):
                        target[field] = [*target.get(field, []), *value]
                    else:
                        target[field] = value
            else:
                spec.setdefault(key, []).append(item)
    return merged


def flink_pods() -> dict[str, dict[str, Any]]:
    """JobManager and TaskManager pods as the operator builds them (labels of Flink's native mode added)."""
    deployment = flink_deployment()
    base = deployment["spec"]["podTemplate"]
    name = deployment["metadata"]["name"]
    pods = {}
    for component, spec_key in (("jobmanager", "jobManager"), ("taskmanager", "taskManager")):
        pod = merge_pod_templates(base, deployment["spec"][spec_key].get("podTemplate", {"spec": {}}))
        pod["metadata"]["labels"].update({"app": name, "component": component, "type": "flink-native-kubernetes"})
        pods[component] = pod
    return pods


def airflow_pod_labels() -> dict[str, dict[str, str]]:
    common = {"tier": "airflow", "release": AIRFLOW_RELEASE, **helm_values().get("labels", {})}
    return {component: {**common, "component": component} for component in AIRFLOW_COMPONENTS}


def workloads() -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, name, pod labels) of every pod the platform runs."""
    found = []
    for path, document in documents():
        if document["kind"] in {"StatefulSet", "Deployment", "Job"}:
            labels = document["spec"]["template"].get("metadata", {}).get("labels", {})
            found.append((namespace_of(path, document), document["metadata"]["name"], labels))
    for component, pod in flink_pods().items():
        found.append((NAMESPACE, f"flink-{component}", pod["metadata"]["labels"]))
    found += [(NAMESPACE, f"airflow-{c}", labels) for c, labels in airflow_pod_labels().items()]
    executor_labels = {**executor_template()["metadata"]["labels"], "spark-role": "executor"}
    found.append((spark_conf()["spark.kubernetes.namespace"], "spark-executor", executor_labels))
    return found


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    """(name, pod spec) of every pod spec the repository writes itself."""
    specs = []
    for _, document in documents():
        if document["kind"] in {"StatefulSet", "Deployment", "Job"}:
            spec = copy.deepcopy(document["spec"]["template"]["spec"])
            for claim in document["spec"].get("volumeClaimTemplates", []):  # a StatefulSet's per-pod volumes
                spec.setdefault("volumes", []).append(
                    {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": "<per pod>"}}
                )
            specs.append((document["metadata"]["name"], spec))
    specs += [(f"flink-{c}", pod["spec"]) for c, pod in flink_pods().items()]
    specs.append(("spark-executor", executor_template()["spec"]))
    return specs


# --------------------------------------------------------------------------------------------------
# Pod Security `restricted`


def restricted_violations(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """What Pod Security Admission's `restricted` profile (v1.33) would refuse for one container of a pod."""
    problems = []
    pod_context, context = pod.get("securityContext", {}), container.get("securityContext", {})
    if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
        problems.append("runAsNonRoot is not true")
    if 0 in (context.get("runAsUser"), pod_context.get("runAsUser")):
        problems.append("runs as uid 0")
    if context.get("allowPrivilegeEscalation") is not False:
        problems.append("allowPrivilegeEscalation is not false")
    if "ALL" not in context.get("capabilities", {}).get("drop", []):
        problems.append("capabilities do not drop ALL")
    if set(context.get("capabilities", {}).get("add", [])) - {"NET_BIND_SERVICE"}:
        problems.append("adds capabilities")
    seccomp = (context.get("seccompProfile") or pod_context.get("seccompProfile") or {}).get("type")
    if seccomp not in {"RuntimeDefault", "Localhost"}:
        problems.append("no RuntimeDefault seccomp profile")
    if context.get("privileged"):
        problems.append("privileged")
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.get(field):
            problems.append(field)
    allowed = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected"}
    for volume in pod.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= allowed | {"secret"}:
            problems.append(f"volume {volume['name']}: {kinds}")
    return problems


def test_both_namespaces_enforce_restricted_pod_security() -> None:
    namespaces = {d["metadata"]["name"]: d["metadata"]["labels"] for d in of_kind("Namespace")}
    assert set(namespaces) == {NAMESPACE, SPARK_NAMESPACE}
    for name, labels in namespaces.items():
        for mode in ("enforce", "audit", "warn"):
            assert labels.get(f"pod-security.kubernetes.io/{mode}") == "restricted", (name, mode)


@pytest.mark.parametrize("name", [name for name, _ in pod_specs()])
def test_every_pod_the_repository_writes_meets_restricted(name: str) -> None:
    spec = dict(pod_specs())[name]
    containers = [*spec.get("initContainers", []), *spec["containers"]]
    assert containers
    for container in containers:
        assert restricted_violations(spec, container) == [], (name, container["name"])


def test_the_restricted_check_refuses_what_pod_security_admission_refuses() -> None:
    _, spec = pod_specs()[0]
    for mutate in (
        lambda s: s["securityContext"].pop("seccompProfile"),
        lambda s: s["securityContext"].update(runAsNonRoot=False),
        lambda s: s["containers"][0]["securityContext"].update(allowPrivilegeEscalation=True),
        lambda s: s["containers"][0]["securityContext"]["capabilities"].update(drop=[]),
        lambda s: s.update(hostNetwork=True),
        lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
    ):
        broken = copy.deepcopy(spec)
        broken.setdefault("volumes", [])
        mutate(broken)
        assert restricted_violations(broken, broken["containers"][0]), mutate


def test_the_airflow_charts_security_contexts_meet_restricted() -> None:
    """The chart applies securityContexts.pod/containers to its components, init containers and task pods."""
    values = helm_values()
    pod, container = values["securityContexts"]["pod"], values["securityContexts"]["containers"]
    assert restricted_violations({"securityContext": pod}, {"securityContext": container}) == []
    assert container["readOnlyRootFilesystem"] is True
    assert pod["runAsUser"] == 50000  # the platform image's user (platform.Dockerfile: USER 50000)
    # Charts' own containers outside the global context: statsd is off, the default-user job is off.
    assert values["statsd"]["enabled"] is False
    assert values["createUserJob"]["defaultUser"]["enabled"] is False
    mounted = {m["mountPath"] for m in values["volumeMounts"]}
    assert "/tmp" in mounted


#: Where a container's root file system stays writable, and why. Empty: every container the repository
#: writes runs read-only (with emptyDirs where the program writes).
WRITABLE_ROOT_FILESYSTEM: dict[str, str] = {}


@pytest.mark.parametrize("name", [name for name, _ in pod_specs()])
def test_root_file_systems_are_read_only_with_scratch_space(name: str) -> None:
    spec = dict(pod_specs())[name]
    for container in spec["containers"]:
        if name in WRITABLE_ROOT_FILESYSTEM:
            continue
        assert container["securityContext"].get("readOnlyRootFilesystem") is True, (name, container["name"])
        mounts = {m["mountPath"] for m in container.get("volumeMounts", [])}
        assert "/tmp" in mounts, f"{name}: no writable /tmp"
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        for mount in container.get("volumeMounts", []):
            assert mount["name"] in volumes, (name, mount["name"])


def test_the_executor_pod_template_is_a_valid_pod() -> None:
    template = executor_template()
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t", **template["metadata"]}, **template}
    pod["metadata"] = {"name": "t", **template["metadata"]}
    assert manifest_errors(pod) == []
    assert (
        template["spec"]["containers"][0]["name"] == spark_conf()["spark.kubernetes.executor.podTemplateContainerName"]
    )
    assert spark_conf()["spark.kubernetes.executor.podTemplateFile"] == "/opt/spark-conf/executor-pod-template.yaml"
    mounts = {m["mountPath"]: m["name"] for m in helm_values()["volumeMounts"]}
    volumes = {v["name"]: v for v in helm_values()["volumes"]}
    assert volumes[mounts["/opt/spark-conf"]]["configMap"]["name"] == "spark-defaults"


# --------------------------------------------------------------------------------------------------
# Resources


def memory_bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9, "m": 2**20, "g": 2**30}
    match = re.fullmatch(r"(\d+)([A-Za-z]*)", str(quantity))
    assert match, quantity
    return int(match.group(1)) * units.get(match.group(2), 1)


def test_every_container_has_requests_and_limits() -> None:
    checked = 0
    for name, spec in pod_specs():
        if name.startswith(("flink-", "spark-")):
            continue  # their resources come from the FlinkDeployment and spark-defaults.conf (below)
        for container in spec["containers"]:
            resources = container["resources"]
            assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
            assert resources["requests"]["memory"] == resources["limits"]["memory"], name
            checked += 1
    values = helm_values()
    for component in ("apiServer", "scheduler", "dagProcessor", "triggerer", "migrateDatabaseJob", "workers"):
        resources = values[component]["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"])
        checked += 1
    deployment = flink_deployment()["spec"]
    for spec_key in ("jobManager", "taskManager"):
        assert {"cpu", "memory"} <= set(deployment[spec_key]["resource"])
    conf = spark_conf()
    for key in ("spark.executor.memory", "spark.executor.memoryOverhead", "spark.executor.cores"):
        assert key in conf
    assert "spark.kubernetes.executor.limit.cores" in conf
    assert checked >= 9


def test_memory_limits_hold_the_configured_jvm_heaps() -> None:
    kafka = next(d for d in of_kind("StatefulSet") if d["metadata"]["name"] == "kafka")
    container = kafka["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    heap = memory_bytes(re.search(r"-Xmx(\S+)", env["KAFKA_HEAP_OPTS"]).group(1))  # type: ignore[union-attr]
    assert heap <= memory_bytes(container["resources"]["limits"]["memory"]) // 2  # the rest: page cache
    platform = load_yaml_documents(K8S_DIR / "platform" / "configmap.yaml")[0]["data"]
    driver = memory_bytes(platform["HDP_SPARK_DRIVER_MEMORY"])
    assert driver * 1.4 <= memory_bytes(helm_values()["workers"]["resources"]["limits"]["memory"])


# --------------------------------------------------------------------------------------------------
# NetworkPolicies


def network_policies() -> list[tuple[str, dict[str, Any]]]:
    return [(namespace_of(p, d), d) for p, d in documents() if d["kind"] == "NetworkPolicy"]


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def pods_in(namespace: str) -> list[dict[str, str]]:
    ours = [labels for ns, _, labels in workloads() if ns == namespace]
    return ours or list(EXTERNAL_PODS.get(namespace, []))


def peer_namespaces(peer: dict[str, Any], own: str) -> list[str]:
    if "namespaceSelector" not in peer:
        return [own]
    name = peer["namespaceSelector"].get("matchLabels", {}).get("kubernetes.io/metadata.name")
    assert name, f"namespaceSelector by name only: {peer}"
    return [name]


def test_each_namespace_denies_by_default_and_allows_dns() -> None:
    for namespace in (NAMESPACE, SPARK_NAMESPACE):
        policies = [p for ns, p in network_policies() if ns == namespace]
        deny = [p for p in policies if p["spec"]["podSelector"] == {} and "ingress" not in p["spec"]]
        assert any(set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"} and "egress" not in p["spec"] for p in deny)
        dns = [p for p in policies if p["spec"]["podSelector"] == {} and p["spec"].get("egress")]
        assert dns and all(
            {port["port"] for rule in p["spec"]["egress"] for port in rule["ports"]} == {53} for p in dns
        ), namespace
        assert dns[0]["spec"]["egress"][0]["to"][0]["namespaceSelector"]["matchLabels"] == {
            "kubernetes.io/metadata.name": "kube-system"
        }


def test_every_network_policy_selector_matches_a_workload() -> None:
    policies = network_policies()
    assert len(policies) >= 12
    for namespace, policy in policies:
        name = policy["metadata"]["name"]
        selected = [labels for labels in pods_in(namespace) if selects(policy["spec"]["podSelector"], labels)]
        assert selected, f"{namespace}/{name}: podSelector matches no workload"
        for direction, peers_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction, []):
                for peer in rule.get(peers_key, []):
                    if "ipBlock" in peer:
                        continue
                    for peer_namespace in peer_namespaces(peer, namespace):
                        matches = [p for p in pods_in(peer_namespace) if selects(peer.get("podSelector", {}), p)]
                        assert matches, f"{namespace}/{name} {direction}: {peer} matches no workload"


def test_the_selector_check_notices_a_typo() -> None:
    labels = airflow_pod_labels()["worker"]
    assert selects({"matchLabels": {"tier": "airflow", "component": "worker"}}, labels)
    assert not selects({"matchLabels": {"tier": "airflow", "component": "workers"}}, labels)
    assert not selects({"matchExpressions": [{"key": "component", "operator": "In", "values": ["x"]}]}, labels)


def allowed_sources(namespace: str, target: dict[str, str], port: int) -> list[tuple[str, str]]:
    """(namespace, workload) pairs some ingress rule lets reach `port` of the pod labelled `target`."""
    found = []
    for ns, policy in network_policies():
        if ns != namespace or not selects(policy["spec"]["podSelector"], target):
            continue
        for rule in policy["spec"].get("ingress", []):
            if port not in {p["port"] for p in rule.get("ports", [{"port": port}])}:
                continue
            for peer in rule.get("from", []):
                for peer_ns in peer_namespaces(peer, ns):
                    for peer_ns_, name, labels in workloads():
                        if peer_ns_ == peer_ns and selects(peer.get("podSelector", {}), labels):
                            found.append((peer_ns, name))
                    if peer_ns in EXTERNAL_PODS:
                        found.append((peer_ns, "*"))
    return found


def test_flink_rest_is_open_to_airflow_tasks_scheduler_and_the_operator_only() -> None:
    jobmanager = flink_pods()["jobmanager"]["metadata"]["labels"]
    sources = set(allowed_sources(NAMESPACE, jobmanager, 8081))
    assert sources == {(NAMESPACE, "airflow-worker"), (NAMESPACE, "airflow-scheduler"), ("flink-operator", "*")}


def test_kafka_is_open_to_its_clients_and_its_quorum_to_brokers_only() -> None:
    kafka = next(d for d in of_kind("StatefulSet") if d["metadata"]["name"] == "kafka")
    ports = {p["name"]: p["containerPort"] for p in kafka["spec"]["template"]["spec"]["containers"][0]["ports"]}
    broker = kafka["spec"]["template"]["metadata"]["labels"]
    clients = {name for _, name in allowed_sources(NAMESPACE, broker, ports["internal"])}
    assert {"flink-jobmanager", "flink-taskmanager", "spark-executor", "kafka-setup", "airflow-worker"} <= clients
    assert clients <= {
        "kafka",
        "kafka-setup",
        "flink-jobmanager",
        "flink-taskmanager",
        "spark-executor",
        *(f"airflow-{c}" for c in AIRFLOW_COMPONENTS),
    }
    assert {name for _, name in allowed_sources(NAMESPACE, broker, ports["controller"])} == {"kafka"}


def test_policy_ports_are_the_configured_ports() -> None:
    settings = flink_deployment()["spec"]["flinkConfiguration"]
    flink_ports = {int(settings[k]) for k in settings if k.endswith(("rpc.port", "data.port", "blob.server.port"))}
    policy = next(p for _, p in network_policies() if p["metadata"]["name"] == "flink-cluster")
    assert {p["port"] for p in policy["spec"]["ingress"][0]["ports"]} == flink_ports == {6121, 6122, 6123, 6124}
    conf = spark_conf()
    driver = next(p for _, p in network_policies() if p["metadata"]["name"] == "spark-driver")
    assert {p["port"] for p in driver["spec"]["ingress"][0]["ports"]} == {
        int(conf["spark.driver.port"]),
        int(conf["spark.driver.blockManager.port"]),
    }
    assert {p["port"] for p in driver["spec"]["egress"][0]["ports"]} == {int(conf["spark.blockManager.port"])}
    assert conf["spark.kubernetes.namespace"] == SPARK_NAMESPACE


def test_the_settings_defaults_are_what_the_manifests_say() -> None:
    """settings.yaml's replacements copy each knob into place; the committed manifests carry the defaults."""
    settings = load_yaml_documents(K8S_DIR / "settings.yaml")[0]
    assert settings["metadata"]["annotations"]["config.kubernetes.io/local-config"] == "true"
    knobs = settings["data"]
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    targets = {r["source"]["fieldPath"].split(".", 1)[1]: r["targets"] for r in kustomization["replacements"]}
    assert set(targets) == set(knobs)
    for knob, value in knobs.items():
        for target in targets[knob]:
            selected = [
                d
                for p, d in documents()
                if d["kind"] == target["select"]["kind"] and d["metadata"]["name"] == target["select"]["name"]
                if target["select"].get("namespace") in (None, namespace_of(p, d))
            ]
            assert selected, target["select"]
            for document in selected:
                for field in target["fieldPaths"]:
                    node: Any = document
                    for part in re.findall(r"\[([^\]]+)\]|([^.\[\]]+)", field):
                        key = part[0] or part[1]
                        node = node[int(key)] if isinstance(node, list) else node[key]
                    assert node == value, (knob, target["select"]["name"], field)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (its built-in kustomize) is not installed")
def test_kustomize_builds_and_applies_the_settings(tmp_path: Path) -> None:
    tree = tmp_path / "k8s"
    shutil.copytree(K8S_DIR, tree)
    settings = tree / "settings.yaml"
    settings.write_text(
        settings.read_text()
        .replace("flinkOperatorNamespace: flink-operator", "flinkOperatorNamespace: ops")
        .replace("postgresCidr: 10.0.0.0/8", "postgresCidr: 10.9.8.7/32")
    )
    built = subprocess.run(["kubectl", "kustomize", str(tree)], capture_output=True, text=True, timeout=120)
    assert built.returncode == 0, built.stderr
    objects = [d for d in yaml.safe_load_all(built.stdout) if d]
    assert not [d for d in objects if d["metadata"]["name"] == "hdp-cluster-settings"]  # local-config
    by_name = {(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in objects}
    rest = by_name["NetworkPolicy", NAMESPACE, "flink-rest"]
    assert rest["spec"]["ingress"][0]["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ops"
    }
    assert ("Certificate", "ops", "flink-operator-cert") in by_name
    postgres = by_name["NetworkPolicy", NAMESPACE, "postgres-egress"]
    assert postgres["spec"]["egress"][0]["to"][0]["ipBlock"]["cidr"] == "10.9.8.7/32"
    assert {d["metadata"].get("namespace") for d in objects if d["kind"] != "Namespace"} == {
        NAMESPACE,
        SPARK_NAMESPACE,
        "ops",
    }


# --------------------------------------------------------------------------------------------------
# RBAC


def role_rules() -> dict[tuple[str, str], list[dict[str, Any]]]:
    return {(namespace_of(p, d), d["metadata"]["name"]): d["rules"] for p, d in documents() if d["kind"] == "Role"}


def bindings() -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(namespace, role) -> {(service account namespace, name)}."""
    found: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for path, document in documents():
        if document["kind"] == "RoleBinding":
            namespace = namespace_of(path, document)
            subjects = {(s.get("namespace", namespace), s["name"]) for s in document["subjects"]}
            found.setdefault((namespace, document["roleRef"]["name"]), set()).update(subjects)
    return found


def test_no_role_reads_secrets_or_uses_wildcards() -> None:
    assert of_kind("ClusterRole") == [] and of_kind("ClusterRoleBinding") == []
    for (namespace, name), rules in role_rules().items():
        for rule in rules:
            assert "secrets" not in rule["resources"] and "*" not in rule["resources"], (namespace, name)
            assert "*" not in rule["verbs"] and "*" not in rule["apiGroups"], (namespace, name)


def test_pod_creation_is_granted_where_needed_only() -> None:
    creators = set()
    for (namespace, role), rules in role_rules().items():
        if any("pods" in r["resources"] and "create" in r["verbs"] for r in rules):
            creators |= {(namespace, sa) for sa in bindings().get((namespace, role), set())}
    assert creators == {
        (NAMESPACE, (NAMESPACE, "flink")),  # native mode: TaskManager pods
        (NAMESPACE, (NAMESPACE, "airflow-scheduler")),  # KubernetesExecutor: task pods
        (SPARK_NAMESPACE, (NAMESPACE, "airflow-worker")),  # Spark drivers: executors, in hdp-spark only
    }
    # The chart's own pod-launcher binding (scheduler, task pods and triggerer alike) is off.
    assert helm_values()["allowPodLaunching"] is False
    # The Spark executors' identity has no role and no token.
    assert not any((SPARK_NAMESPACE, "spark-executor") in subjects for subjects in bindings().values())


def test_the_flink_role_is_the_operators_job_role() -> None:
    rules = role_rules()[NAMESPACE, "flink"]
    granted = {(group, resource) for rule in rules for group in rule["apiGroups"] for resource in rule["resources"]}
    assert granted == {("", "pods"), ("", "configmaps"), ("apps", "deployments"), ("apps", "deployments/finalizers")}
    assert flink_deployment()["spec"]["serviceAccount"] == "flink"


def test_pods_that_never_call_the_api_get_no_token() -> None:
    for name, spec in pod_specs():
        if name.startswith("flink-"):
            continue  # the JobManager starts TaskManagers, TaskManagers watch the HA ConfigMaps
        assert spec.get("automountServiceAccountToken") is False, name
    account = next(d for d in of_kind("ServiceAccount") if d["metadata"]["name"] == "spark-executor")
    assert account["automountServiceAccountToken"] is False
    values = helm_values()
    for component in ("dagProcessor", "triggerer", "migrateDatabaseJob"):
        assert values[component]["serviceAccount"]["automountServiceAccountToken"] is False, component


# --------------------------------------------------------------------------------------------------
# Flink REST: mutual TLS


def certificates() -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in of_kind("Certificate")}


def test_flink_rest_requires_client_certificates() -> None:
    deployment = flink_deployment()
    settings = deployment["spec"]["flinkConfiguration"]
    assert settings["security.ssl.rest.enabled"] == "true"
    assert settings["security.ssl.rest.authentication-enabled"] == "true"
    # The keystores are those of a cert-manager Certificate's Secret, mounted where the settings point.
    jobmanager = flink_pods()["jobmanager"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in jobmanager["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in jobmanager["volumes"]}
    for key in ("security.ssl.rest.keystore", "security.ssl.rest.truststore"):
        folder, file = settings[key].rsplit("/", 1)
        secret = volumes[mounts[folder]]["secret"]["secretName"]
        certificate = next(c for c in certificates().values() if c["spec"]["secretName"] == secret)
        assert certificate["spec"]["keystores"]["jks"]["create"] is True and file.endswith(".jks")
    # The TaskManagers serve no REST and do not mount its key.
    assert "rest-tls" not in {v["name"] for v in flink_pods()["taskmanager"]["spec"]["volumes"]}
    # The server certificate names the host HDP_FLINK_REST_URL calls, over https.
    platform = load_yaml_documents(K8S_DIR / "platform" / "configmap.yaml")[0]["data"]
    url = platform["HDP_FLINK_REST_URL"]
    assert url.startswith("https://")
    host = url.split("//", 1)[1].split(":", 1)[0]
    server = certificates()["hdp-flink-rest"]
    assert host in server["spec"]["dnsNames"] and "server auth" in server["spec"]["usages"]


def test_airflow_holds_a_client_certificate_of_the_rest_ca() -> None:
    server_issuer = certificates()["hdp-flink-rest"]["spec"]["issuerRef"]["name"]
    issuers = {(d["metadata"].get("namespace", NAMESPACE), d["metadata"]["name"]): d for d in of_kind("Issuer")}
    ca_secret = issuers[NAMESPACE, server_issuer]["spec"]["ca"]["secretName"]
    client = certificates()["hdp-flink-rest-client-airflow"]
    assert client["spec"]["issuerRef"]["name"] == server_issuer and "client auth" in client["spec"]["usages"]
    values = helm_values()
    secrets = {v["name"]: v["secret"]["secretName"] for v in values["volumes"] if "secret" in v}
    mounts = {m["name"]: m["mountPath"] for m in values["volumeMounts"]}
    assert secrets["flink-rest-tls"] == client["spec"]["secretName"]
    # The platform's client (flink_ops, `flink run`'s conf written by the init Job) reads it from
    # HDP_FLINK_REST_TLS_DIR: the mount in Airflow's pods.
    env = {item["name"]: item["value"] for item in values["env"]}
    assert env["HDP_FLINK_REST_TLS_DIR"] == mounts["flink-rest-tls"]
    init = load_yaml_documents(K8S_DIR / "platform" / "init-job.yaml")[0]["spec"]["template"]["spec"]
    init_env = {item["name"]: item.get("value") for item in init["containers"][0]["env"]}
    assert init_env["HDP_FLINK_REST_TLS_DIR"] == mounts["flink-rest-tls"]
    # The operator's client certificate: the same CA (a copy of its Secret) in the operator's namespace.
    operator = certificates()["flink-operator-cert"]
    operator_issuer = issuers[operator["metadata"]["namespace"], operator["spec"]["issuerRef"]["name"]]
    assert operator_issuer["spec"]["ca"]["secretName"] == ca_secret
    # The Secret the operator chart mounts (its tls.secretName default).
    assert operator["spec"]["secretName"] == "flink-operator-cert"  # pragma: allowlist secret
    # Only the CA's own Issuer signs with the CA: no other certificate of the namespace comes from it.
    signed = {c["metadata"]["name"] for c in certificates().values() if c["spec"]["issuerRef"]["name"] == server_issuer}
    assert signed == {"hdp-flink-rest", "hdp-flink-rest-client-airflow", "flink-operator-cert"}


def test_the_only_literal_password_is_the_keystore_constant() -> None:
    """Every keystore-password field holds the one documented constant, on a cert-manager keystore."""
    uses = [
        (path.name, where, value)
        for path, document in documents()
        for where, value in walk(document)
        if where in KEYSTORE_PASSWORD_FIELDS
    ]
    assert len(uses) == 5 and {value for *_, value in uses} == {KEYSTORE_PASSWORD}, uses
    settings = flink_deployment()["spec"]["flinkConfiguration"]
    assert {settings[k] for k in settings if k.endswith("-password")} == {KEYSTORE_PASSWORD}


# --------------------------------------------------------------------------------------------------
# Kafka: TLS (cert-manager) + SCRAM-SHA-512 per principal + ACLs


PLATFORM_CONFIG = "hdp-platform-config"
KAFKA_PASSWORDS_SECRET = "hdp-kafka-passwords"  # pragma: allowlist secret
#: Every container that talks to Kafka, and the principals (kafka_auth.PRINCIPALS) whose passwords it holds.
KAFKA_PASSWORDS: dict[str, set[str]] = {
    # Formats the storage with the SCRAM users the brokers need before any ACL exists.
    "kafka/format-storage": {"broker", "admin"},
    # The broker's own user (inter-broker SCRAM); also the controller listener's PLAIN user, not a principal.
    "kafka/kafka": {"broker"},
    # `hdp kafka setup`: the admin, and every principal whose SCRAM user it writes (the broker's is the format's).
    "kafka-setup/setup": {p.name for p in kafka_auth.PRINCIPALS} - {"broker"},
    # Airflow's task pods submit both Flink jobs and read consumer lag; never the admin.
    "airflow": {"fraud-scoring", "lake-ingest", "observer"},
    # The FlinkSessionJobs' programs run on the JobManager (PythonDriver); TaskManagers get the job's settings.
    "flink-jobmanager": {"fraud-scoring", "lake-ingest"},
    "flink-taskmanager": set(),
    "hdp-platform-init/init": set(),
}


def platform_config() -> dict[str, str]:
    return dict(load_yaml_documents(K8S_DIR / "platform" / "configmap.yaml")[0]["data"])


def kafka_statefulset() -> dict[str, Any]:
    return next(d for d in of_kind("StatefulSet") if d["metadata"]["name"] == "kafka")


def kafka_workloads() -> dict[str, dict[str, Any]]:
    """Every container the platform runs, as far as Kafka is concerned: the ConfigMaps it loads, its literal
    variables, its variables from Secrets (name -> (Secret, key)) and what is mounted where (path -> volume)."""
    found: dict[str, dict[str, Any]] = {}

    def add(name: str, pod: dict[str, Any], container: dict[str, Any]) -> None:
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        env = container.get("env", [])
        found[name] = {
            "config_maps": {e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e},
            "env": {e["name"]: e["value"] for e in env if "value" in e},
            "secrets": {
                e["name"]: (e["valueFrom"]["secretKeyRef"]["name"], e["valueFrom"]["secretKeyRef"]["key"])
                for e in env
                if "secretKeyRef" in e.get("valueFrom", {})
            },
            # A StatefulSet's claim templates are volumes of their own (listed by name only here).
            "mounts": {
                m["mountPath"]: volumes.get(m["name"], {"name": m["name"]}) for m in container.get("volumeMounts", [])
            },
        }

    for _, document in documents():
        if document["kind"] in {"StatefulSet", "Deployment", "Job"}:
            spec = document["spec"]["template"]["spec"]
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                add(f"{document['metadata']['name']}/{container['name']}", spec, container)
    for component, pod in flink_pods().items():
        add(f"flink-{component}", pod["spec"], pod["spec"]["containers"][0])
    values = helm_values()
    from_secrets = [
        {"name": s["envName"], "valueFrom": {"secretKeyRef": {"name": s["secretName"], "key": s["secretKey"]}}}
        for s in values["secret"]
    ]
    airflow = {
        "envFrom": yaml.safe_load(values["extraEnvFrom"]),
        "env": [*values["env"], *yaml.safe_load(values["extraEnv"]), *from_secrets],
        "volumeMounts": values["volumeMounts"],
    }
    add("airflow", {"volumes": values["volumes"]}, airflow)
    return found


def test_every_kafka_client_uses_sasl_ssl_with_the_ca_at_one_path() -> None:
    """The ConfigMap switches every platform process to SASL_SSL; the CA is the brokers' cert-manager CA, alone,
    at the same path in every pod that loads it (the jobs Airflow submits carry the path to Flink's pods)."""
    config = platform_config()
    assert config["HDP_KAFKA_SECURITY_PROTOCOL"] == kafka_auth.SASL_SSL
    folder, file = config["HDP_KAFKA_CA_FILE"].rsplit("/", 1)
    broker_secret = certificates()["hdp-kafka-broker"]["spec"]["secretName"]
    workloads_ = kafka_workloads()
    loading = {name for name, workload in workloads_.items() if PLATFORM_CONFIG in workload["config_maps"]}
    clients = {name for name, principals in KAFKA_PASSWORDS.items() if not name.startswith("kafka/")}
    assert clients <= loading, clients - loading
    for name in loading:
        workload = workloads_[name]
        overridden = {"HDP_KAFKA_SECURITY_PROTOCOL", "HDP_KAFKA_CA_FILE"} & set(workload["env"])
        assert not overridden, f"{name} overrides {overridden}"
        volume = workload["mounts"].get(folder)
        assert volume is not None, f"{name}: nothing mounted at {folder} (HDP_KAFKA_CA_FILE)"
        # The ca.crt of the brokers' Secret and nothing else of it (not their key).
        assert volume["secret"]["secretName"] == broker_secret, name
        assert volume["secret"]["items"] == [{"key": "ca.crt", "path": file}], name


def test_each_workload_holds_only_the_kafka_passwords_of_its_principals() -> None:
    by_variable = {p.password_variable: p.name for p in kafka_auth.PRINCIPALS}
    held: dict[str, set[str]] = {}
    for name, workload in kafka_workloads().items():
        for variable, (secret, key) in workload["secrets"].items():
            if variable == "KRAFT_CONTROLLER_PASSWORD":
                assert (name, secret, key) == ("kafka/kafka", KAFKA_PASSWORDS_SECRET, "controller"), name
                continue
            if variable in by_variable or secret == KAFKA_PASSWORDS_SECRET:
                assert variable in by_variable and secret == KAFKA_PASSWORDS_SECRET, (name, variable, secret)
                # The Secret's key is the principal's name: a variable reading another's password is caught.
                assert key == by_variable[variable], f"{name}: {variable} reads the password of {key}"
                held.setdefault(name, set()).add(key)
        if name in KAFKA_PASSWORDS:
            held.setdefault(name, set())
    assert held == KAFKA_PASSWORDS
    # The Spark executors (spark-defaults.conf) get none.
    assert not [key for key in spark_conf() if "KAFKA" in key.upper()]


def broker_settings() -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The broker container, its start script's exports, and its server.properties as the image renders it."""
    container = kafka_statefulset()["spec"]["template"]["spec"]["containers"][0]
    exports = script_exports(container["command"][-1])
    env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
    return container, exports, kafka_image_properties({**env, **exports})


def test_the_brokers_listen_sasl_ssl_only_and_deny_by_default() -> None:
    """No PLAINTEXT listener; SCRAM for clients and replication, PLAIN for the controllers, StandardAuthorizer
    with nothing allowed without an ACL and the local runtime's super users; the passwords never in a literal,
    and out of Kafka's environment before it starts."""
    container, _, settings = broker_settings()
    assert kafka_broker_problems(settings) == []
    script = container["command"][-1]
    unset = re.search(r"^\s*unset (.+)$", script, re.MULTILINE)
    assert unset and script.index(unset.group(0)) < script.index("exec /etc/kafka/docker/run")
    secret_variables = {e["name"] for e in container["env"] if "secretKeyRef" in e.get("valueFrom", {})}
    assert secret_variables - {"CLUSTER_ID"} <= set(unset.group(1).split())


def test_the_brokers_tls_comes_from_their_cert_manager_certificate() -> None:
    """A PEM keystore (key + chain in one file, PKCS#8) and the CA from the Secret of a Certificate of the Kafka
    CA, naming every host clients and brokers connect to."""
    container, exports, settings = broker_settings()
    statefulset = kafka_statefulset()
    spec = statefulset["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["mountPath"]: volumes.get(m["name"], {}) for m in container["volumeMounts"]}
    broker = certificates()["hdp-kafka-broker"]["spec"]
    for setting, key in (("ssl.keystore.location", "tls-combined.pem"), ("ssl.truststore.location", "ca.crt")):
        folder, file = settings[setting].rsplit("/", 1)
        secret = mounts[folder]["secret"]
        assert secret["secretName"] == broker["secretName"]
        assert {item["path"]: item["key"] for item in secret["items"]}[file] == key, setting
    assert {"type": "CombinedPEM"} in broker["additionalOutputFormats"]
    assert broker["privateKey"]["encoding"] == "PKCS8"
    assert "server auth" in broker["usages"]
    # Its own CA, signing nothing else (not the Flink REST CA).
    issuers = {d["metadata"]["name"]: d for d in of_kind("Issuer")}
    assert (
        issuers[broker["issuerRef"]["name"]]["spec"]["ca"]["secretName"]
        == certificates()["hdp-kafka-ca"]["spec"]["secretName"]
    )
    signed = {c["metadata"]["name"] for c in certificates().values() if c["spec"]["issuerRef"] == broker["issuerRef"]}
    assert signed == {"hdp-kafka-broker"}
    # The names: the bootstrap address, each broker's advertised name, each controller's voter address.
    namespace = NAMESPACE
    hosts = {platform_config()["HDP_KAFKA_BOOTSTRAP"].rsplit(":", 1)[0]}
    for ordinal in range(statefulset["spec"]["replicas"]):
        advertised = exports["KAFKA_ADVERTISED_LISTENERS"].replace("${HOSTNAME}", f"kafka-{ordinal}")
        advertised = advertised.replace("${POD_NAMESPACE}", namespace)
        hosts |= {item.split("://", 1)[1].rsplit(":", 1)[0] for item in advertised.split(",")}
    voters = settings["controller.quorum.voters"].split(",")
    assert len(voters) == statefulset["spec"]["replicas"]
    hosts |= {voter.split("@", 1)[1].rsplit(":", 1)[0] for voter in voters}
    assert hosts <= set(broker["dnsNames"]), hosts - set(broker["dnsNames"])


def test_the_storage_format_writes_the_broker_and_admin_scram_users() -> None:
    """Before the first start, with the passwords in a private @file (never argv) on the init container's own
    /tmp; what the format reads agrees with the broker's configuration."""
    spec = kafka_statefulset()["spec"]["template"]["spec"]
    init = next(c for c in spec["initContainers"] if c["name"] == "format-storage")
    script = init["command"][-1]
    tool, args_file = scram_format_arguments(script)
    assert "--ignore-formatted" in tool
    assert f"rm -f {args_file}" in script
    # Its /tmp is not the broker's: the broker container cannot read the admin's password there.
    volumes = {v["name"]: v for v in spec["volumes"]}
    init_tmp = next(m["name"] for m in init["volumeMounts"] if m["mountPath"] == "/tmp")
    broker_tmp = next(m["name"] for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == "/tmp")
    assert init_tmp != broker_tmp and "emptyDir" in volumes[init_tmp]
    # The format reads the broker's node id, roles, quorum, listeners and log directory.
    _, exports, settings = broker_settings()
    heredoc = re.search(r"<<EOF\n(.*?)\n\s*EOF", script, re.DOTALL)
    assert heredoc
    formatted = properties_text(heredoc.group(1))
    assert formatted.pop("node.id") == exports["KAFKA_NODE_ID"]
    assert formatted and all(settings.get(key) == value for key, value in formatted.items()), {
        key: (value, settings.get(key)) for key, value in formatted.items() if settings.get(key) != value
    }
    data = {m["mountPath"]: m["name"] for m in init["volumeMounts"]}[settings["log.dirs"]]
    assert data == next(
        m["name"] for m in spec["containers"][0]["volumeMounts"] if m["mountPath"] == settings["log.dirs"]
    )


def test_the_operator_merges_the_flink_pod_templates_by_name() -> None:
    """flink_pods() models the JobManager's pod as the common template plus its own, merged by name: that is the
    operator's merge only with this switch (by position, its first volume would land on hdp-home)."""
    settings = flink_deployment()["spec"]["flinkConfiguration"]
    assert settings["kubernetes.operator.pod-template.merge-arrays-by-name"] == "true"


# --------------------------------------------------------------------------------------------------
# Airflow (Helm values): Airflow 3 keys and an auth manager with roles


FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"


def test_airflow_on_kubernetes_uses_the_fab_auth_manager_and_airflow3_keys() -> None:
    values = helm_values()
    assert values["config"]["core"]["auth_manager"] == FAB_AUTH_MANAGER
    assert "AUTH_ROLE_PUBLIC = None" in values["apiServer"]["apiServerConfig"]
    assert not [k for k in values["config"]["core"] if k.startswith("simple_auth_manager")]
    assert values["apiSecretKeySecretName"] and values["jwtSecretName"]
    for path in [*K8S_MANIFESTS, HELM_VALUES]:
        for document in load_yaml_documents(path):
            for where, value in walk(document):
                assert "simple_auth_manager" not in f"{where}={value}".lower(), (path, where)


def test_the_schema_sources_are_documented() -> None:
    readme = (K8S_DIR.parent / "schemas" / "README.md").read_text()
    for path in sorted((K8S_DIR.parent / "schemas" / "cert-manager").glob("*.yaml")):
        assert f"cert-manager/{path.name}" in readme or path.name in readme, path.name
