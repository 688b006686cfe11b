"""deploy/kubernetes/overlays/s3: the scale-out replicas with the storage-s3 component, so
they share one bucket: no claim for homes, the S3 settings in the sidecar and in Django,
keys only from the djftpd-s3 Secret (never in the manifests). Rendered by kubectl."""

from __future__ import annotations

from typing import Any

import pytest
from deploylib import (
    DJANGO,
    IN_CI,
    KUBE,
    KUBECTL_HINT,
    SIDECAR,
    container,
    kustomize_tools,
    pod_spec,
    render,
    workloads,
)
from djftpd.storage import parse_location

S3_OVERLAY = KUBE / "overlays" / "s3"


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    if not kustomize_tools():
        if IN_CI:
            pytest.fail(f"kubectl is required when CI is set: {KUBECTL_HINT}")
        pytest.skip(
            "no kubectl or kustomize on PATH (the fallback renderer lacks components)"
        )
    return render(S3_OVERLAY)


def ftp_workload(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [sts] = [d for d in workloads(docs) if d["kind"] == "StatefulSet"]
    return sts


def env_of(c: dict[str, Any]) -> dict[str, Any]:
    return {v["name"]: v.get("value", v.get("valueFrom")) for v in c.get("env", [])}


def test_no_claim_for_homes(docs):
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    for w in workloads(docs):
        for v in pod_spec(w).get("volumes", []):
            assert "persistentVolumeClaim" not in v, (w["metadata"]["name"], v)


def test_replicas_share_the_bucket(docs):
    assert ftp_workload(docs)["spec"]["replicas"] > 1


def test_sidecar_gets_a_valid_storage_and_the_sdk_variables(docs):
    env = env_of(container(pod_spec(ftp_workload(docs)), SIDECAR))
    kind, bucket, _ = parse_location(env["DJFTPD_STORAGE"])
    assert kind == "s3" and bucket
    assert env["AWS_REGION"]
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key] == {"secretKeyRef": {"name": "djftpd-s3", "key": key}}


def test_django_reads_the_same_bucket_with_the_same_keys(docs):
    sidecar = env_of(container(pod_spec(ftp_workload(docs)), SIDECAR))
    for w in workloads(docs):
        names = {c["name"] for c in pod_spec(w)["containers"]}
        if DJANGO not in names:
            continue
        env = env_of(container(pod_spec(w), DJANGO))
        for key in (
            "AWS_REGION",
            "AWS_ENDPOINT_URL_S3",
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
        ):
            assert env.get(key) == sidecar.get(key), (w["metadata"]["name"], key)


def test_keys_are_never_in_the_manifests(docs):
    assert not [
        d
        for d in docs
        if d["kind"] == "Secret" and d["metadata"]["name"] == "djftpd-s3"
    ]
