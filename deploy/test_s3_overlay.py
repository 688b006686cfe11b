"""deploy/kubernetes/overlays/s3: homes in a bucket, no volume for them, the S3 settings in
both containers. Rendered by the real kustomize (kubectl kustomize) like the other overlays."""

from __future__ import annotations

from typing import Any

import pytest
import test_manifests as tm
from djftpd.storage import parse_location

S3_OVERLAY = tm.KUBE / "overlays" / "s3"


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    if not tm.kustomize_tools():
        if tm.IN_CI:
            pytest.fail(f"kubectl is required when CI is set: {tm.KUBECTL_HINT}")
        pytest.skip(
            "no kubectl or kustomize on PATH (the fallback renderer lacks merge patches)"
        )
    return tm.render(S3_OVERLAY)


def env_of(docs: list[dict[str, Any]], c: dict[str, Any]) -> dict[str, Any]:
    """A container's variables: its envFrom ConfigMaps, then its env (values or references)."""
    env: dict[str, Any] = {}
    for source in c.get("envFrom", []):
        if "configMapRef" in source:
            name = source["configMapRef"]["name"]
            cm = next(
                d
                for d in docs
                if d["kind"] == "ConfigMap" and d["metadata"]["name"] == name
            )
            env.update(cm["data"])
    for var in c.get("env", []):
        env[var["name"]] = var.get("value", var.get("valueFrom"))
    return env


def test_no_volume_for_homes(docs):
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    [sts] = tm.workloads(docs)
    spec = tm.pod_spec(sts)
    assert "homes" not in {v["name"] for v in spec["volumes"]}
    for c in spec["containers"]:
        assert "/srv/ftp" not in {m["mountPath"] for m in c.get("volumeMounts", [])}, c[
            "name"
        ]


def test_replicas_share_the_bucket(docs):
    [sts] = tm.workloads(docs)
    assert sts["kind"] == "StatefulSet"
    assert sts["spec"]["replicas"] > 1


def test_sidecar_storage_settings(docs):
    [sts] = tm.workloads(docs)
    env = env_of(docs, tm.container(tm.pod_spec(sts), tm.SIDECAR))
    kind, bucket, _ = parse_location(env["DJFTPD_STORAGE"])
    assert (kind, bucket) == ("s3", "set-me-bucket")
    assert env["DJFTPD_HOME_ROOT"] == "/"
    assert env["AWS_REGION"]
    assert not {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} & set(env), (
        "keys in a ConfigMap"
    )


def test_both_containers_get_the_same_storage_and_credentials(docs):
    [sts] = tm.workloads(docs)
    spec = tm.pod_spec(sts)
    for name in (tm.SIDECAR, tm.DJANGO):
        c = tm.container(spec, name)
        secrets = [s["secretRef"] for s in c.get("envFrom", []) if "secretRef" in s]
        assert secrets == [{"name": "djftpd-s3", "optional": True}], name
        assert "DJFTPD_STORAGE" in env_of(docs, c), name
    django = env_of(docs, tm.container(spec, tm.DJANGO))
    ref = django["DJFTPD_STORAGE"]["configMapKeyRef"]
    assert ref["name"].startswith("djftpd-config")
    secret = next(
        d
        for d in docs
        if d["kind"] == "Secret" and d["metadata"]["name"] == "djftpd-s3"
    )
    assert set(secret["stringData"]) == {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}


def test_irsa_service_account(docs):
    [sts] = tm.workloads(docs)
    assert tm.pod_spec(sts)["serviceAccountName"] == "djftpd"
    assert any(
        d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "djftpd"
        for d in docs
    )
