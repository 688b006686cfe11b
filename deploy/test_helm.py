"""The Helm chart (deploy/helm/djftpd): lint and render over the values matrix (ci/*.yaml;
every rendering also goes through test_pods.py's checks), what each value does, what the
chart refuses, and that it describes the kustomize base's pods.

helm is built by `make test-deploy` (go install helm.sh/helm/v3/cmd/helm@v3.22.0 into a
cache beside Go's build cache) and passed in $HELM; required under CI.
"""

from __future__ import annotations

import base64
import copy
import re
from pathlib import Path
from typing import Any

import pytest
from deploylib import (
    BASE,
    CHART,
    DJANGO,
    EXAMPLES,
    HELM_VALUES,
    MIN_KUBERNETES,
    SIDECAR,
    check_sftp,
    container,
    find,
    helm_run,
    helm_template,
    pod_spec,
    port_range,
    prestop_sleep,
    render,
    sha256,
    sidecar_env,
    tier,
)

Docs = list[dict[str, Any]]


def values(name: str) -> Path:
    return HELM_VALUES[f"helm-{name}"]


@pytest.mark.parametrize("name", sorted(HELM_VALUES))
def test_helm_lint(name: str) -> None:
    """`helm lint --strict` (warnings fail too) with each values file of the matrix."""
    r = helm_run("lint", "--strict", "--kube-version", MIN_KUBERNETES, "-f", str(HELM_VALUES[name]), str(CHART))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 chart(s) failed" in r.stdout


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (("image.djftpd.tag=latest",), "pin a version tag or a digest"),
        (("image.django.tag=",), "pin a version tag or a digest"),
        (("ftp.passivePorts=30000-30039",), "outside the NodePort range"),
        (("ftp.passivePorts=50000-50009",), "more ports than ftp.maxConnectionsPerIP"),
        (("ftp.passivePorts=50100-50000",), "want FIRST-LAST"),
        (("ftp.passivePorts=many",), "does not match pattern"),
        (("ftp.replicas=2",), "needs ftp.hostPorts.enabled"),
        (("ftp.replicas=3", "ftp.hostPorts.enabled=true"), "ReadWriteMany, or storage.type s3"),
        (("storage.type=s3",), "storage.s3.bucket is required"),
        # values.schema.json: a misspelt or unknown value, a wrong enum, a bad digest.
        (("ftp.publicHots=203.0.113.10",), "additional properties 'publicHots' not allowed"),
        (("ftp.tlsMode=plain",), "value must be one of"),
        (("storage.type=nfs",), "value must be one of"),
        (("image.djftpd.digest=sha256:abc",), "does not match pattern"),
    ],
)
def test_chart_refuses(sets: tuple[str, ...], message: str) -> None:
    """Values that would deploy a broken FTP server fail at render time, naming the value."""
    args = ["template", "rel", str(CHART), "--kube-version", MIN_KUBERNETES]
    for s in sets:
        args += ["--set", s]
    r = helm_run(*args)
    assert r.returncode != 0, f"{sets} rendered"
    assert message in r.stderr, r.stderr


def test_chart_refuses_an_old_kubernetes() -> None:
    r = helm_run("template", "rel", str(CHART), "--kube-version", "1.29.0")
    assert r.returncode != 0 and "kubeVersion" in r.stderr, r.stderr


def test_passive_range_is_one_value() -> None:
    """Changing ftp.passivePorts alone moves the env, every container port and every
    Service port (test_pods.py checks that they agree in every rendering)."""
    docs = helm_template(sets=("ftp.passivePorts=52000-52029", "ftp.publicHost=203.0.113.10"))
    ftp = tier(docs, "ftp")
    assert sidecar_env(docs, pod_spec(ftp))["DJFTPD_PASSIVE_PORTS"] == "52000-52029"
    c = container(pod_spec(ftp), SIDECAR)
    assert {p["containerPort"] for p in c["ports"] if p["name"].startswith("pasv-")} == port_range("52000-52029")
    svc = find(docs, "Service", "rel-djftpd")
    assert {p["port"] for p in svc["spec"]["ports"] if p["name"].startswith("pasv-")} == port_range("52000-52029")


def normalize_pod(docs: Docs, w: dict[str, Any]) -> dict[str, Any]:
    """A pod template with the renderer's naming taken out: object names, label selectors and
    the sidecar's envFrom (replaced by the effective environment, ConfigMap included)."""
    spec = copy.deepcopy(pod_spec(w))

    def walk(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: ("<labels>" if k == "matchLabels" else walk(v, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, key) for v in value]
        if key in ("secretName", "claimName") or (key == "name" and isinstance(value, str) and re.search(r"djftpd-(secret|config)", value)):
            return "<name>"
        return value

    for c in spec["containers"]:
        if c["name"] == SIDECAR:
            env = sidecar_env(docs, pod_spec(w))
            c.pop("envFrom")
            c["env"] = env
        else:
            c["env"] = {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}
    spec["volumes"] = sorted(spec["volumes"], key=lambda v: v["name"])
    # Order aside (kustomize's patches may move a container they touch).
    spec["containers"] = sorted(spec["containers"], key=lambda c: c["name"])
    return walk(spec)


@pytest.mark.parametrize(
    ("kustomization", "helm_values", "sets"),
    [
        (BASE, "default", ()),
        (
            EXAMPLES / "scaleout-s3",
            "scaleout",
            (
                "storage.s3.region=eu-west-1",
                "storage.s3.endpoint=https://s3.eu-west-1.amazonaws.com",
                "storage.s3.existingSecret=djftpd-s3",
            ),
        ),
    ],
    ids=["base", "scaleout-s3"],
)
def test_chart_and_kustomize_describe_the_same_pods(
    kustomization: Path, helm_values: str, sets: tuple[str, ...]
) -> None:
    """The chart's defaults render the kustomize base's FTP and web pods (and with hostPorts
    and S3, the scale-out example's), names and labels aside."""
    kdocs = render(kustomization)
    hdocs = helm_template(values(helm_values), sets=sets)
    for component in ("ftp", "web"):
        k, h = tier(kdocs, component), tier(hdocs, component)
        assert k["kind"] == h["kind"], component
        kp, hp = normalize_pod(kdocs, k), normalize_pod(hdocs, h)
        if component == "ftp" and k["kind"] == "StatefulSet":
            # The chart names the replica count; the overlay does not need the same number.
            assert k["spec"]["volumeClaimTemplates"] == h["spec"]["volumeClaimTemplates"]
        for c in kp["containers"] + hp["containers"]:
            c.pop("imagePullPolicy", None)
        assert hp == kp, f"{component} pods differ"
        strategy = "updateStrategy" if k["kind"] == "StatefulSet" else "strategy"
        assert k["spec"][strategy] == h["spec"][strategy]


def test_generated_secret_rolls_the_pods_on_change() -> None:
    """The chart's own secret: both tiers carry its checksum, so a new value rolls every pod,
    and every container reads the one Secret."""
    sums = []
    for value in ("a" * 64, "b" * 64):
        docs = helm_template(values("generated-secret"), sets=(f"secret.value={value}",))
        secret = find(docs, "Secret", "rel-djftpd-secret")
        assert base64.b64decode(secret["data"]["secret"]).decode() == value
        for component in ("ftp", "web"):
            w = tier(docs, component)
            assert w["spec"]["template"]["metadata"]["annotations"]["checksum/secret"] == sha256(value)
        sums.append(sha256(value))
    assert sums[0] != sums[1]
    # Without a value: 64 random characters, the same in both tiers' checksums.
    docs = helm_template(values("default"))
    value = base64.b64decode(find(docs, "Secret", "rel-djftpd-secret")["data"]["secret"]).decode()
    assert len(value) == 64
    for component in ("ftp", "web"):
        annotations = tier(docs, component)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["checksum/secret"] == sha256(value)


def test_existing_secret_is_not_rendered() -> None:
    docs = helm_template(values("existing-secret"))
    assert not [d for d in docs if d["kind"] == "Secret"]
    for component in ("ftp", "web"):
        w = tier(docs, component)
        assert w["metadata"]["annotations"]["secret.reloader.stakater.com/reload"] == "djftpd-external"
        assert "checksum/secret" not in w["spec"]["template"]["metadata"].get("annotations", {})
        vol = next(v for v in pod_spec(w)["volumes"] if v["name"] == "djftpd-secret")
        assert vol["secret"]["secretName"] == "djftpd-external"


def test_cert_manager_certificate() -> None:
    docs = helm_template(values("tls-certmanager"))
    (cert,) = [d for d in docs if d["kind"] == "Certificate"]
    assert cert["spec"]["secretName"] == "djftpd-tls"
    assert cert["spec"]["dnsNames"] == ["ftp.example.com"]
    assert not [d for d in helm_template(values("default")) if d["kind"] == "Certificate"]


def test_implicit_ftps_is_published() -> None:
    docs = helm_template(values("implicit-tls"))
    ports = {p["name"]: p for p in find(docs, "Service", "rel-djftpd")["spec"]["ports"]}
    assert ports["ftps-implicit"]["port"] == 990
    assert sidecar_env(docs, pod_spec(tier(docs, "ftp")))["DJFTPD_TLS_MODE"] == "implicit"


def test_s3_storage_values() -> None:
    """storage.type s3: DJFTPD_STORAGE=s3://bucket/prefix and the AWS SDK's variables from
    the named Secret, in djftpd and both gunicorn containers; no homes claim."""
    docs = helm_template(values("s3"))
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    ftp = pod_spec(tier(docs, "ftp"))
    env = sidecar_env(docs, ftp)
    assert env["DJFTPD_STORAGE"] == "s3://my-ftp-bucket/homes"
    assert env["AWS_ENDPOINT_URL_S3"] == "https://minio.example.com"
    assert env["AWS_REGION"] == "eu-west-1"
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key] == {"secretKeyRef": {"name": "djftpd-s3", "key": key}}
    for spec in (ftp, pod_spec(tier(docs, "web"))):
        names = {e["name"] for e in container(spec, DJANGO)["env"]}
        assert {"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= names


def test_resources_and_grace_follow_the_values() -> None:
    docs = helm_template(values("resources"))
    ftp = pod_spec(tier(docs, "ftp"))
    assert container(ftp, SIDECAR)["resources"]["limits"] == {"cpu": "2", "memory": "1Gi"}
    assert container(pod_spec(tier(docs, "web")), DJANGO)["resources"]["requests"] == {"cpu": "1", "memory": "1Gi"}
    assert sidecar_env(docs, ftp)["DJFTPD_SHUTDOWN_GRACE"] == "120s"
    # preStop 30 + grace 120 + flush 5, then gunicorn's 10, plus 5.
    assert ftp["terminationGracePeriodSeconds"] == 170
    assert prestop_sleep(container(ftp, DJANGO)) == 155
    assert tier(docs, "web")["spec"]["replicas"] == 4
    assert not [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]


def test_deregistration_drives_the_drain() -> None:
    """drain.loadBalancerDeregistrationSeconds is djftpd's preStop sleep, and the grace period
    grows with it."""
    docs = helm_template(values("loadbalancer-aws"))
    ftp = pod_spec(tier(docs, "ftp"))
    assert prestop_sleep(container(ftp, SIDECAR)) == 45
    assert ftp["terminationGracePeriodSeconds"] == 45 + 30 + 5 + 10 + 5
    svc = find(docs, "Service", "rel-djftpd")
    assert "deregistration_delay.timeout_seconds=45" in svc["metadata"]["annotations"][
        "service.beta.kubernetes.io/aws-load-balancer-target-group-attributes"
    ]
    assert svc["spec"]["loadBalancerSourceRanges"] == ["198.51.100.0/24", "203.0.113.0/24"]


def test_network_policy_and_pod_monitor_values() -> None:
    docs = helm_template(values("networkpolicy-podmonitor"))
    (np,) = [d for d in docs if d["kind"] == "NetworkPolicy"]
    peers = np["spec"]["ingress"][1]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}}} in peers
    (pm,) = [d for d in docs if d["kind"] == "PodMonitor"]
    assert pm["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    default = helm_template(values("default"))
    assert not [d for d in default if d["kind"] in ("NetworkPolicy", "PodMonitor")]


def test_rwx_with_init_owner() -> None:
    docs = helm_template(values("rwx-initowner"))
    pvc = find(docs, "PersistentVolumeClaim", "rel-djftpd-homes")
    assert pvc["spec"]["storageClassName"] == "azurefile-csi"
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    ftp = tier(docs, "ftp")
    assert ftp["spec"]["strategy"]["type"] == "RollingUpdate"
    (init,) = pod_spec(ftp)["initContainers"]
    assert "chown 65532:65532 /srv/ftp" in init["command"][-1]


def test_scaleout_values() -> None:
    docs = helm_template(values("scaleout"))
    sts = tier(docs, "ftp")
    assert sts["kind"] == "StatefulSet" and sts["spec"]["replicas"] == 3
    assert sts["spec"]["serviceName"] == "rel-djftpd-ops"
    spec = pod_spec(sts)
    env = sidecar_env(docs, spec)
    assert env["DJFTPD_PUBLIC_HOST"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    ports = {p["name"]: p.get("hostPort") for p in container(spec, SIDECAR)["ports"]}
    assert (ports["ftp"], ports["ftps-implicit"], ports["ops"]) == (21, 990, None)
    public = find(docs, "Service", "rel-djftpd-public")
    assert public["metadata"]["annotations"]["external-dns.alpha.kubernetes.io/endpoints-type"] == "NodeExternalIP"


def test_sftp_values() -> None:
    """sftp.enabled: DJFTPD_SFTP_LISTEN on 2222, published on sftp.port by the Service (or
    as a hostPort), opened in the NetworkPolicy, every host key a file of the user's Secret
    mounted read-only; off by default."""
    assert check_sftp(helm_template(values("default"))) is None
    docs = helm_template(values("sftp"))
    assert check_sftp(docs) == 2222
    env = sidecar_env(docs, pod_spec(tier(docs, "ftp")))
    assert env["DJFTPD_SFTP_HOST_KEYS"] == (
        "/run/secrets/djftpd-sftp/ssh_host_ed25519_key,/run/secrets/djftpd-sftp/ssh_host_rsa_key"
    )
    ports = {p["name"]: p for p in find(docs, "Service", "rel-djftpd")["spec"]["ports"]}
    assert ports["sftp"] == {"name": "sftp", "port": 22, "targetPort": "sftp"}
    scaled = helm_template(values("scaleout"), sets=("sftp.enabled=true", "sftp.port=2022"))
    assert check_sftp(scaled) == 2222
    sidecar = container(pod_spec(tier(scaled, "ftp")), SIDECAR)
    assert {p["name"]: p.get("hostPort") for p in sidecar["ports"]}["sftp"] == 2022
