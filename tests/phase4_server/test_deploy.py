"""The deployment files in ``phase4_production/server/deploy/`` (Dockerfile, compose, Prometheus, Grafana, KServe).

None of them is built or run on the course machines (no Docker daemon, no GPU). These tests lint what a user would
otherwise find out only on a machine of their own: ``docker build`` failing on a missing path, a container that
listens where nobody connects, Prometheus scraping a host that does not exist, a Grafana panel left silently empty.
"""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML reads the compose, Prometheus, Grafana and KServe files")

from phase4_production.server.cli import build_parser  # noqa: E402

pytestmark = pytest.mark.phase4_task15

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "phase4_production" / "server" / "deploy"

#: Triton's names (counters without ``_total``), exposed by the learner's server and Triton, and the course's own two.
METRICS = {
    "nv_inference_request_success", "nv_inference_request_failure", "nv_inference_count", "nv_inference_exec_count",
    "nv_inference_request_duration_us", "nv_inference_queue_duration_us", "nv_inference_compute_infer_duration_us",
    "nv_inference_pending_request_count", "inference_lab_request_duration_seconds",
    "inference_lab_http_responses_total",
}
HISTOGRAM = "inference_lab_request_duration_seconds"


def _yaml(relative: str) -> dict:
    return yaml.safe_load((DEPLOY / relative).read_text())


def _mount(volume: str) -> tuple[str, str]:
    """A compose short-syntax volume ``source:target[:mode]`` as (source, target); the source may be ``${VAR:-x}``."""
    source, target = re.match(r"(\$\{[^}]*\}|[^:]+):([^:]+)", volume).groups()
    return source, target


def _host_path(source: str) -> Path:
    """A compose bind-mount source (``./x``, ``../x`` or ``${VAR:-../x}``) as a path, relative to compose.yaml."""
    default = re.fullmatch(r"\$\{\w+:-(.+)\}", source)
    return (DEPLOY / (default.group(1) if default else source)).resolve()


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _cmd() -> list[str]:
    """The Dockerfile's CMD, exec form."""
    (cmd,) = [args for instruction, args in _dockerfile() if instruction == "CMD"]
    return json.loads(cmd)


def test_every_yaml_file_parses():
    """A YAML syntax error stops ``docker compose``, Prometheus, Grafana or ``kubectl`` before anything starts."""
    files = sorted(DEPLOY.rglob("*.yaml")) + sorted(DEPLOY.rglob("*.yml"))
    assert len(files) >= 5, files
    for f in files:
        assert isinstance(yaml.safe_load(f.read_text()), dict), f"{f} is not a YAML mapping"


def test_compose_has_the_four_services_their_mounts_and_distinct_ports():
    """A missing mount source makes Docker create an empty folder in its place; a host port used twice fails ``up``."""
    services = _yaml("compose.yaml")["services"]
    assert {"server", "triton", "prometheus", "grafana"} <= set(services)
    build = services["server"]["build"]
    assert (DEPLOY / build["context"]).resolve() == REPO, "the build context must be the repository root"
    assert (REPO / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    # The model repository is generated (`... repository --out model_repository`), not committed: it must be where
    # the command line writes it by default.
    generated = (REPO / build_parser().parse_args(["repository"]).out).resolve()
    host_ports = []
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target = _mount(volume)
            if source.startswith((".", "$")):
                path = _host_path(source)
                assert path == generated or path.exists(), f"{name}: {source} -> {path} does not exist"
                if name == "server":
                    assert target == str(build_parser().parse_args(_cmd()[3:]).repository), "not where CMD looks"
        host_ports += [str(p).split(":")[0] for p in service.get("ports", [])]
    assert len(host_ports) == len(set(host_ports)), f"a host port is published twice: {host_ports}"


def test_prometheus_scrapes_compose_services_on_ports_they_publish():
    """A target that is not a service name (or not its metrics port) is a scrape that fails forever: no data."""
    services = _yaml("compose.yaml")["services"]
    jobs = {job["job_name"]: job for job in _yaml("prometheus.yml")["scrape_configs"]}
    assert {"inference-lab", "triton"} <= set(jobs)
    for job in jobs.values():
        assert job.get("metrics_path", "/metrics") == "/metrics", "the path the server and Triton serve metrics on"
        for target in (t for config in job["static_configs"] for t in config["targets"]):
            host, port = target.split(":")
            assert host in services, f"{job['job_name']}: {host} is not a compose service"
            assert port in [str(p).split(":")[-1] for p in services[host]["ports"]], f"{target}: port not published"
    port = build_parser().parse_args(_cmd()[3:]).port
    assert jobs["inference-lab"]["static_configs"][0]["targets"] == [f"server:{port}"], "not the port CMD serves on"


def test_dashboard_uses_only_the_exposed_metric_names_and_defined_variables():
    """A typo in a metric name or a variable does not fail anywhere: the panel is just empty."""
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "inference-server.json").read_text())
    assert dashboard["uid"] == "inference-lab-server" and dashboard["schemaVersion"] == 39
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {ids}"
    exprs = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    used = set(re.findall(r"\b(?:nv_|inference_lab_)[a-z_]+", " ".join(exprs)))
    allowed = METRICS | {HISTOGRAM + suffix for suffix in ("_bucket", "_sum", "_count")}
    assert used <= allowed, f"not exposed by the server nor Triton: {sorted(used - allowed)}"
    assert METRICS - {HISTOGRAM} <= used and HISTOGRAM + "_bucket" in used, "an exposed metric has no panel"
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    assert {"model", "job"} <= variables
    referenced = set(re.findall(r"\$(?!__)(\w+)", " ".join(exprs)))
    assert referenced <= variables, f"undefined dashboard variables: {sorted(referenced - variables)}"
    # The panels name the data source the provisioning file creates, and Grafana loads the folder compose mounts.
    uid = _yaml("grafana/provisioning/datasources/prometheus.yaml")["datasources"][0]["uid"]
    assert {panel["datasource"]["uid"] for panel in dashboard["panels"]} == {uid}
    provider = _yaml("grafana/provisioning/dashboards/dashboards.yaml")["providers"][0]
    mounts = dict(_mount(v) for v in _yaml("compose.yaml")["services"]["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]


def test_dockerfile_serves_the_module_on_the_exposed_port_as_non_root():
    """The image must run ``serve`` on 0.0.0.0 (127.0.0.1 is unreachable from outside) on the port it exposes."""
    argv = _cmd()
    assert argv[:3] == ["python", "-m", "phase4_production.server"]
    args = build_parser().parse_args(argv[3:])
    assert args.command == "serve" and args.host == "0.0.0.0"
    instructions = _dockerfile()
    exposed = [port.split("/")[0] for i, a in instructions if i == "EXPOSE" for port in a.split()]
    assert str(args.port) in exposed
    users = [a for i, a in instructions if i == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the server would run as root"
    (health,) = [a for i, a in instructions if i == "HEALTHCHECK"]
    assert f":{args.port}/v2/health/ready" in health


def test_dockerfile_copies_what_pip_install_needs():
    """A COPY source missing from the repository fails ``docker build``; a package not copied fails at import."""
    copied = set()
    for instruction, arguments in _dockerfile():
        if instruction == "COPY":
            sources = [a for a in arguments.split() if not a.startswith("--")][:-1]
            for source in sources:
                assert (REPO / source).exists(), f"COPY {source}: not in the repository"
                copied.add(source.rstrip("/"))
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert {"pyproject.toml", pyproject["project"]["readme"]} <= copied, "pip install -e . reads both"
    find = pyproject["tool"]["setuptools"]["packages"]["find"]
    for pattern in find["include"]:
        name = pattern.rstrip("*")
        (folder,) = [(Path(root) / name).as_posix().removeprefix("./") for root in find["where"]
                     if (REPO / root / name).is_dir()]
        assert folder in copied, f"package {name} ({folder}) is not copied into the image"


def test_kserve_manifest_is_a_triton_inference_service():
    """``kubectl apply`` rejects a wrong apiVersion/kind; another model format picks a runtime that cannot load it."""
    manifest = _yaml("kserve/inferenceservice.yaml")
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1" and manifest["kind"] == "InferenceService"
    predictor = manifest["spec"]["predictor"]
    assert predictor["model"]["modelFormat"]["name"] == "triton"
    assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] in ("1", 1)
    assert predictor["minReplicas"] <= predictor["maxReplicas"]
