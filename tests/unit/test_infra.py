"""infra/ checked by real validators: the Compose specification's JSON schema
(check-jsonschema's vendored copy) and Kubernetes' OpenAPI schemas (kubernetes-validate).
No Docker engine or cluster runs here, so this proves the files are well-formed against
the specifications, not that the containers start (tests/production runs the same
services without containers)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

INFRA = Path(__file__).resolve().parents[2] / "infra"
K8S_VERSION = kubernetes_validate.latest_version()


def check_compose(path: Path) -> subprocess.CompletedProcess:
    """check-jsonschema against its vendored copy of the Compose specification."""
    validator = str(Path(sys.executable).with_name("check-jsonschema"))
    return subprocess.run(
        [validator, "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
    )


def test_compose_file_follows_the_compose_specification():
    compose = INFRA / "docker-compose.yml"
    done = check_compose(compose)
    assert done.returncode == 0, done.stdout + done.stderr
    services = yaml.safe_load(compose.read_text())["services"]
    expected = {"postgres", "prefect-server", "prefect-worker", "mlflow", "serving", "evidently-ui"}
    assert expected <= set(services)
    # Every image-built service runs a command this project has.
    assert services["serving"]["command"][:2] == ["cartlift", "serve"]


def test_compose_file_is_rejected_when_broken(tmp_path):
    """The validator is not a rubber stamp: a wrong type fails it."""
    broken = yaml.safe_load((INFRA / "docker-compose.yml").read_text())
    broken["services"]["serving"]["ports"] = {"not": "a list"}
    path = tmp_path / "compose.yml"
    path.write_text(yaml.safe_dump(broken))
    assert check_compose(path).returncode != 0


@pytest.mark.parametrize("path", sorted((INFRA / "k8s").glob("*.yaml")), ids=lambda p: p.name)
def test_kubernetes_manifests_validate(path):
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d]
    for document in documents:
        kubernetes_validate.validate(document, K8S_VERSION, strict=True)
    kinds = {d["kind"] for d in documents}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler"} <= kinds
    (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"


def test_a_broken_manifest_is_rejected():
    deployment = next(
        d
        for d in yaml.safe_load_all((INFRA / "k8s" / "serving.yaml").read_text())
        if d and d["kind"] == "Deployment"
    )
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def render(template: object, values: dict[str, object]) -> object:
    """Prefect's placeholder substitution: a value that is only "{{ name }}" becomes the
    variable's value (any type); placeholders inside longer strings become its text."""
    if isinstance(template, dict):
        return {k: render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values) for v in template]
    if isinstance(template, str):
        whole = re.fullmatch(r"\{\{\s*(\w+)\s*\}\}", template)
        if whole:
            return values[whole.group(1)]
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: str(values[m.group(1)]), template)
    return template


def test_prefect_kubernetes_work_pool_job_renders_to_a_valid_job():
    pool = json.loads((INFRA / "k8s" / "prefect-work-pool.json").read_text())
    assert {"job_configuration", "variables"} <= set(pool)
    props = pool["variables"]["properties"]
    values = {name: spec.get("default") for name, spec in props.items()}
    values |= {
        "name": "pipeline-run",
        "command": "prefect flow-run execute",
        "env": [{"name": "PREFECT_API_URL", "value": "http://prefect:4200/api"}],
        "labels": {},
    }
    job = render(pool["job_configuration"]["job_manifest"], values)
    # Prefect's worker splits the command string into args.
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["args"] = container["args"].split()
    kubernetes_validate.validate(kubernetes_job(job), K8S_VERSION, strict=True)
    assert container["image"] == "cartlift:latest"


def kubernetes_job(job: dict) -> dict:
    """``job`` as the cluster keeps it: prefect-kubernetes insists on ``parallelism`` and
    ``completions`` in the pod's spec (not Kubernetes fields: the API server drops them)."""
    pod = {
        k: v
        for k, v in job["spec"]["template"]["spec"].items()
        if k not in ("parallelism", "completions")
    }
    return job | {"spec": job["spec"] | {"template": job["spec"]["template"] | {"spec": pod}}}


@pytest.mark.usefixtures("prefect_engine")
def test_the_kubernetes_worker_takes_the_work_pool_and_the_image_has_it():
    """prefect-kubernetes (locked, the image's extra `kubernetes`) renders a flow run's Job
    from infra/k8s/prefect-work-pool.json, valid for Kubernetes; the image holds every
    package the code imports and points deployed runs at its own copy of the code."""
    import asyncio

    from prefect_kubernetes.worker import KubernetesWorkerJobConfiguration

    pool = json.loads((INFRA / "k8s" / "prefect-work-pool.json").read_text())
    config = asyncio.run(
        KubernetesWorkerJobConfiguration.from_template_and_values(pool, {"image": "cartlift:1.2"})
    )
    job = config.job_manifest
    assert job["spec"]["template"]["spec"]["containers"][0]["image"] == "cartlift:1.2"
    kubernetes_validate.validate(kubernetes_job(job), K8S_VERSION, strict=True)
    lock = (INFRA.parent / "uv.lock").read_text()
    assert 'name = "prefect-kubernetes"' in lock
    dockerfile = (INFRA / "Dockerfile").read_text()
    syncs = [line for line in dockerfile.splitlines() if "uv sync" in line]
    assert syncs and all("--extra kubernetes" in line for line in syncs)
    packages = {p.name for p in INFRA.parent.iterdir() if (p / "__init__.py").exists()}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", dockerfile, re.MULTILINE))
    assert packages - {"tests", "benchmarks"} <= copied, packages - copied
    assert "CARTLIFT_CODE_DIR=/app" in dockerfile and "WORKDIR /app" in dockerfile
