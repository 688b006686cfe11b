"""Helpers shared by the offline checks of deploy/ (test_*.py beside this file).

Renders the kustomizations with the real kustomize (`kubectl kustomize`) or, for the base
alone and only outside CI, with a small built-in renderer; renders the Helm chart with the
helm binary that `make test-deploy` builds; loads YAML strictly (duplicate keys fail, as the
API server's strict decoding does) and reads the settings the checks compare against from
the files themselves.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import ipaddress
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parent
REPO = DEPLOY.parent
KUBE = DEPLOY / "kubernetes"
BASE = KUBE / "base"
OVERLAY = KUBE / "overlays" / "statefulset-scaleout"
COMPONENTS = KUBE / "components"
EXAMPLES = KUBE / "examples"
CHART = DEPLOY / "helm" / "djftpd"
# Every kustomization the checks render: the base, the scale-out overlay, each example.
KUSTOMIZATIONS = {
    "base": BASE,
    "statefulset-scaleout": OVERLAY,
    **{f"example-{p.name}": p for p in sorted(EXAMPLES.iterdir()) if p.is_dir()},
}
# The chart's values matrix: every ci/*-values.yaml (chart-testing's convention).
HELM_VALUES = {
    f"helm-{p.name.removesuffix('-values.yaml')}": p
    for p in sorted((CHART / "ci").glob("*-values.yaml"))
}
HELM_RELEASE = "rel"
HELM_VERSION = "v3.22.0"
SIDECAR = "djftpd"  # the sidecar's container name in every workload
DJANGO = "gunicorn"  # the Django container's name
# Oldest Kubernetes the manifests target: the preStop `sleep` action is on by default from 1.30.
MIN_KUBERNETES = "1.30.0"
# Seconds that must remain between the sidecar's exit and SIGKILL (slow exits).
MARGIN_SECONDS = 5
# The Kubernetes NodePort range (kube-apiserver's default --service-node-port-range).
NODE_PORTS = set(range(30000, 32768))
# Secrets the pods use that the manifests must not contain: applying them would overwrite
# what cert-manager, the user or a controller keeps. deploy/README.md names each.
CERTIFICATE_EXAMPLE = KUBE / "certificate.example.yaml"
USER_SECRETS = {"djftpd-tls", "djftpd-s3", "djftpd-sftp-host-keys"}
# Variables of the design card (section 10) whose feature is not merged yet: allowed in the
# manifests before the README table has them (deploy/README.md says "in progress").
PENDING_VARS: set[str] = set()
# Environment the sidecar may get besides DJFTPD_*: the Go runtime's, the AWS SDK's.
RUNTIME_VARS = {"GOMEMLIMIT"}
AWS_VARS = re.compile(r"AWS_[A-Z0-9_]+")

IN_CI = bool(os.environ.get("CI"))
KUBECTL_HINT = "apt-get install kubernetes-client (Debian's kubectl)"
HELM_HINT = f"make test-deploy builds helm {HELM_VERSION} (go install)"


def unavailable(what: str, hint: str) -> None:
    """Fail under CI, skip elsewhere."""
    if IN_CI:
        pytest.fail(f"{what} is required when CI is set: {hint}")
    pytest.skip(f"{what} not available ({hint})")


# --- files -----------------------------------------------------------------------------------


def events_flush_seconds() -> float:
    """How long djftpd spends delivering its last events after the drain (main.go)."""
    m = re.search(
        r"eventsFlushTimeout\s*=\s*(\d+)\s*\*\s*time\.Second",
        (REPO / "main.go").read_text(),
    )
    assert m, "main.go lost eventsFlushTimeout: update this test"
    return float(m.group(1))


def readme_table() -> dict[str, str]:
    """The README's DJFTPD_* variables and their defaults, from the config-table block."""
    text = (REPO / "README.md").read_text()
    start, end = "<!-- config-table:start -->", "<!-- config-table:end -->"
    assert start in text, "README.md lost its config-table start marker"
    assert end in text, "README.md lost its config-table end marker"
    table = {}
    for line in text.split(start, 1)[1].split(end, 1)[0].splitlines():
        m = re.match(r"\|\s*`(DJFTPD_[A-Z0-9_]+)`\s*\|([^|]*)\|", line)
        if m:
            table[m.group(1)] = m.group(2).strip().strip("`")
    assert len(table) > 20, "README config table parsed to almost nothing"
    return table


README_VARS = readme_table()


def go_duration(s: str) -> float:
    """Seconds in a Go duration string such as "30s", "1m30s" or "1h"."""
    units = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)", s)
    assert "".join(n + u for n, u in parts) == s != "", f"not a Go duration: {s!r}"
    return sum(float(n) * units[u] for n, u in parts)


def port_range(s: str) -> set[int]:
    """The ports of an inclusive "lo-hi" range (or a single port)."""
    lo, _, hi = s.partition("-")
    return set(range(int(lo), int(hi or lo) + 1))


def listen_port(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host, int(port)


def memory_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity ("256Mi", "1G", "512") in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 10**3, "M": 10**6, "G": 10**9}
    m = re.fullmatch(r"(\d+)([KMGT]i|[kMG])?", str(quantity))
    assert m, f"not a memory quantity this test knows: {quantity!r}"
    return int(m.group(1)) * units.get(m.group(2) or "", 1)


def parse_env_file(path: Path) -> dict[str, str]:
    """KEY=value lines, as a kustomize `env:` file or systemd's EnvironmentFile= read them."""
    env = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=value: {raw!r}"
            env[key.strip()] = value.strip()
    return env


class StrictLoader(yaml.SafeLoader):
    """YAML with duplicate mapping keys refused (the API server's strict decoding does)."""


def _strict_mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    dups = {k for k in keys if keys.count(k) > 1}
    if dups:
        raise yaml.constructor.ConstructorError(
            None, None, f"duplicate keys {sorted(map(str, dups))}", node.start_mark
        )
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _strict_mapping)


def load_yaml_text(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.load_all(text, Loader=StrictLoader) if d]


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    return load_yaml_text(path.read_text())


# --- kustomize -------------------------------------------------------------------------------


def kustomize_tools() -> list[list[str]]:
    """Every real kustomize on PATH: `kubectl kustomize` first, then a standalone kustomize."""
    tools = []
    if shutil.which("kubectl"):
        tools.append(["kubectl", "kustomize"])
    kustomize = shutil.which("kustomize") or shutil.which("kustomize", path=str(tools_bin()))
    if kustomize:
        tools.append([kustomize, "build"])
    return tools


@functools.cache
def kubectl_minor() -> int:
    out = subprocess.run(
        ["kubectl", "version", "--client", "-o", "json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    version = json.loads(out)["clientVersion"]
    assert version["major"] == "1", version
    return int(re.match(r"\d+", version["minor"]).group())


def legacy_kustomize(cmd: list[str]) -> bool:
    """kubectl 1.20 and older embed kustomize v2.0.3 (Debian bookworm's kubernetes-client)."""
    return cmd[0] == "kubectl" and kubectl_minor() < 21


def render_with_tool(path: Path, cmd: list[str]) -> list[dict[str, Any]]:
    if legacy_kustomize(cmd) and path != BASE:
        unavailable(
            "kubectl 1.21 or later",
            f"{path.relative_to(KUBE)} uses components; kubectl {kubectl_minor()} cannot",
        )
    r = subprocess.run([*cmd, str(path)], check=False, capture_output=True, text=True)
    assert r.returncode == 0, f"{' '.join(cmd)} {path.relative_to(REPO)}:\n{r.stderr}"
    # No warnings either: deprecated fields would print one with kustomize v5.
    assert not r.stderr.strip(), f"{' '.join(cmd)} {path.relative_to(REPO)}:\n{r.stderr}"
    return load_yaml_text(r.stdout)


@functools.cache
def _render_cached(path: Path) -> str:
    tools = kustomize_tools()
    if path != BASE:
        # Components need kustomize v3.7+: a standalone kustomize (make test-deploy builds
        # one) when the kubectl on PATH is 1.20 or older (Debian bookworm's).
        tools = [t for t in tools if not legacy_kustomize(t)] or tools
    if tools:
        return json.dumps(render_with_tool(path, tools[0]))
    if IN_CI:
        pytest.fail(f"kubectl is required when CI is set: {KUBECTL_HINT}")
    if path != BASE:
        unavailable("kubectl", KUBECTL_HINT)
    return json.dumps(render_fallback(path))


def render(path: Path) -> list[dict[str, Any]]:
    """path rendered by the real kustomize (required under CI), else (base only) by
    render_fallback. A fresh copy each call: tests may change what they get."""
    return json.loads(_render_cached(path))


def render_fallback(path: Path) -> list[dict[str, Any]]:
    """A minimal kustomize for the base: resources, configMapGenerator, secretGenerator
    (literals), generatorOptions labels and images, exactly the features the base uses.

    Generated objects keep their plain name (kustomize appends a hash and rewrites the
    references; both sides of every reference stay consistent either way).
    """
    kz = yaml.safe_load((path / "kustomization.yaml").read_text())
    known = {
        "apiVersion",
        "kind",
        "resources",
        "configMapGenerator",
        "secretGenerator",
        "generatorOptions",
        "images",
    }
    unknown = set(kz) - known
    assert not unknown, f"render_fallback does not implement {sorted(unknown)}; extend it"
    options = kz.get("generatorOptions", {})
    assert set(options) <= {"labels"}, f"render_fallback does not implement {options}"
    docs: list[dict[str, Any]] = []
    for res in kz.get("resources", []):
        assert not (path / res).is_dir(), "render_fallback renders the base only"
        docs += load_yaml_docs(path / res)
    meta_labels = dict(options.get("labels", {}))
    for gen in kz.get("configMapGenerator", []):
        assert set(gen) <= {"name", "env", "envs", "literals"}, f"extend render_fallback: {gen}"
        data: dict[str, str] = {}
        for env in [gen["env"]] if "env" in gen else gen.get("envs", []):
            data.update(parse_env_file(path / env))
        for literal in gen.get("literals", []):
            key, _, value = literal.partition("=")
            data[key] = value
        meta: dict[str, Any] = {"name": gen["name"]}
        if meta_labels:
            meta["labels"] = dict(meta_labels)
        docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": data})
    for gen in kz.get("secretGenerator", []):
        assert set(gen) <= {"name", "type", "literals"}, f"extend render_fallback: {gen}"
        sdata = {}
        for literal in gen.get("literals", []):
            key, _, value = literal.partition("=")
            sdata[key] = base64.b64encode(value.encode()).decode()
        meta = {"name": gen["name"]}
        if meta_labels:
            meta["labels"] = dict(meta_labels)
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": meta,
                "type": gen.get("type", "Opaque"),
                "data": sdata,
            }
        )
    images = {}
    for i in kz.get("images", []):
        images[i["name"]] = i.get("newName", i["name"]) + (
            f":{i['newTag']}" if "newTag" in i else ""
        )
    for d in docs:
        for c in pod_spec(d).get("containers", []) if pod_spec(d) else []:
            c["image"] = images.get(c["image"], c["image"])
    return docs


def normalized(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """docs sorted, with kustomize's generated-name hash suffixes removed, references included."""
    hashed = {
        d["metadata"]["name"]: re.sub(r"-[a-z0-9]{10}$", "", d["metadata"]["name"])
        for d in docs
        if d["kind"] in ("ConfigMap", "Secret")
    }

    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return hashed.get(value, value) if isinstance(value, str) else value

    return sorted((strip(d) for d in docs), key=lambda d: (d["kind"], d["metadata"]["name"]))


# --- helm ------------------------------------------------------------------------------------


@functools.cache
def tools_bin() -> Path:
    """Where make test-deploy builds helm and kustomize: beside Go's build cache."""
    r = subprocess.run(["go", "env", "GOCACHE"], capture_output=True, text=True, check=False)
    gocache = r.stdout.strip() or str(Path.home() / ".cache" / "go-build")
    return Path(gocache).parent / "djftpd-tools" / "bin"


def helm_binary() -> str | None:
    """helm HELM_VERSION: $HELM (set by make test-deploy), the Makefile's cache, or PATH."""
    candidates = [os.environ.get("HELM", "")]
    candidates.append(str(tools_bin() / "helm"))
    candidates.append(shutil.which("helm") or "")
    for c in candidates:
        if c and os.access(c, os.X_OK) and helm_version(c) == HELM_VERSION:
            return c
    return None


@functools.cache
def helm_version(path: str) -> str:
    """The module version of a helm binary (go install leaves `helm version` without one)."""
    r = subprocess.run(["go", "version", "-m", path], capture_output=True, text=True, check=False)
    m = re.search(r"^\s*mod\s+helm\.sh/helm/v3\s+(v\S+)", r.stdout, re.MULTILINE)
    if m:
        return m.group(1)
    r = subprocess.run([path, "version", "--template", "{{.Version}}"], capture_output=True, text=True, check=False)
    return r.stdout.strip()


def helm() -> str:
    found = helm_binary()
    if found is None:
        unavailable(f"helm {HELM_VERSION}", HELM_HINT)
    assert found
    return found


def helm_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [helm(), *args],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "HELM_CACHE_HOME": "/nonexistent", "HELM_CONFIG_HOME": "/nonexistent"},
    )


@functools.cache
def _helm_template(values: tuple[Path, ...], sets: tuple[str, ...]) -> str:
    args = ["template", HELM_RELEASE, str(CHART), "--namespace", "ftp", "--kube-version", MIN_KUBERNETES]
    for v in values:
        args += ["-f", str(v)]
    for s in sets:
        args += ["--set", s]
    r = helm_run(*args)
    assert r.returncode == 0, f"helm {' '.join(args)}:\n{r.stderr}"
    return r.stdout


def helm_template(*values: Path, sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return load_yaml_text(_helm_template(tuple(values), sets))


def render_any(name: str) -> list[dict[str, Any]]:
    """A kustomization (KUSTOMIZATIONS) or a chart rendering (HELM_VALUES) by name."""
    if name in HELM_VALUES:
        return helm_template(HELM_VALUES[name])
    return render(KUSTOMIZATIONS[name])


RENDERED = [*KUSTOMIZATIONS, *HELM_VALUES]


# --- objects ---------------------------------------------------------------------------------


def pod_spec(doc: dict[str, Any]) -> dict[str, Any] | None:
    if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet"):
        return doc["spec"]["template"]["spec"]
    return None


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for d in docs:
        # Generated objects carry a hash suffix when kustomize rendered them.
        if d["kind"] == kind and re.fullmatch(
            re.escape(name) + r"(-[a-z0-9]{10})?", d["metadata"]["name"]
        ):
            return d
    raise AssertionError(f"{kind}/{name} is not in the rendered manifests")


def container(spec: dict[str, Any], name: str) -> dict[str, Any]:
    for c in spec["containers"]:
        if c["name"] == name:
            return c
    raise AssertionError(f"no container {name!r}")


def sidecar_env(docs: list[dict[str, Any]], spec: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's effective environment: envFrom ConfigMaps, then env (which wins).

    Values set through valueFrom are returned as their valueFrom mapping.
    """
    c = container(spec, SIDECAR)
    env: dict[str, Any] = {}
    for src in c.get("envFrom", []):
        env.update(find(docs, "ConfigMap", src["configMapRef"]["name"])["data"])
    for e in c.get("env", []):
        env[e["name"]] = e["value"] if "value" in e else e["valueFrom"]
    return env


def named_port(c: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    for p in c.get("ports", []):
        if p.get("name") == port:
            return p["containerPort"]
    raise AssertionError(f"container {c['name']} has no port named {port!r}")


def prestop_sleep(c: dict[str, Any]) -> int:
    return c.get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)


def workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = [d for d in docs if pod_spec(d) is not None]
    assert found, "no workload rendered"
    return found


def tier(docs: list[dict[str, Any]], component: str) -> dict[str, Any]:
    """The one workload whose pods carry app.kubernetes.io/component=component."""
    found = [
        w
        for w in workloads(docs)
        if w["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        == component
    ]
    assert len(found) == 1, f"want one {component} workload, got {len(found)}"
    return found[0]


def ftp_workloads(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [w for w in workloads(docs) if SIDECAR in {c["name"] for c in pod_spec(w)["containers"]}]


def selects(selector: dict[str, str], w: dict[str, Any]) -> bool:
    return selector.items() <= w["spec"]["template"]["metadata"]["labels"].items()


def selected(docs: list[dict[str, Any]], selector: dict[str, str]) -> list[str]:
    """The kind/name of every workload whose pods the selector matches."""
    return sorted(
        f"{w['kind']}/{w['metadata']['name']}" for w in workloads(docs) if selects(selector, w)
    )


def public_host_of(env: dict[str, Any]) -> Any:
    return env.get("DJFTPD_PUBLIC_HOST")


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def is_ipv4(s: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(s), ipaddress.IPv4Address)
    except ValueError:
        return False


def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate as kv
    except ImportError:
        unavailable("kubernetes-validate", "pip install -r deploy/requirements.txt")
    return kv


def check_sftp(docs: list[dict[str, Any]]) -> int | None:
    """With DJFTPD_SFTP_LISTEN set: its port is the sidecar's port named sftp, published by a
    hostPort or a load-balanced Service and open in any NetworkPolicy; every host key in
    DJFTPD_SFTP_HOST_KEYS is a file of a read-only mount of a Secret kept outside the
    manifests (a new pod must never show a new host key), unreadable by others. Returns the
    port, or None when SFTP is off."""
    spec = pod_spec(tier(docs, "ftp"))
    env = sidecar_env(docs, spec)
    if not env.get("DJFTPD_SFTP_LISTEN"):
        assert "DJFTPD_SFTP_HOST_KEYS" not in env
        return None
    sidecar = container(spec, SIDECAR)
    _, port = listen_port(env["DJFTPD_SFTP_LISTEN"])
    (cport,) = [p for p in sidecar["ports"] if p["name"] == "sftp"]
    assert cport["containerPort"] == port
    if "hostPort" not in cport:
        published = [
            p
            for d in docs
            if d["kind"] == "Service" and d["spec"].get("type") == "LoadBalancer"
            for p in d["spec"]["ports"]
            if p["targetPort"] in ("sftp", port)
        ]
        assert published, "no load-balanced Service publishes the SFTP port"
    for np in [d for d in docs if d["kind"] == "NetworkPolicy"]:
        open_ports = {p["port"] for r in np["spec"]["ingress"] if "from" not in r for p in r["ports"]}
        assert port in open_ports, "the NetworkPolicy keeps SFTP out"
    vols = {v["name"]: v for v in spec["volumes"]}
    rendered = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    for key in env["DJFTPD_SFTP_HOST_KEYS"].split(","):
        (mount,) = [
            m for m in sidecar["volumeMounts"] if key.startswith(m["mountPath"].rstrip("/") + "/")
        ]
        assert mount.get("readOnly") is True, mount
        secret = vols[mount["name"]]["secret"]
        assert secret["secretName"] in USER_SECRETS and secret["secretName"] not in rendered
        # The pod's group (fsGroup) reads them, as the kubelet makes it anyway; others never.
        assert secret["defaultMode"] & 0o007 == 0, "host keys readable by others"
        assert key.removeprefix(mount["mountPath"].rstrip("/") + "/") in {
            i["path"] for i in secret["items"]
        }
    return port
