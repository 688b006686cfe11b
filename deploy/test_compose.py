"""The docker compose example (structure: no Docker engine here to run `docker compose config`)."""

from __future__ import annotations

from pathlib import Path

import yaml
from deploylib import (
    DEPLOY,
    MARGIN_SECONDS,
    README_VARS,
    RUNTIME_VARS,
    events_flush_seconds,
    go_duration,
    memory_bytes,
    port_range,
)


def test_compose_example() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    djftpd, web = services["djftpd"], services["web"]
    env = djftpd["environment"]
    assert set(env) <= set(README_VARS) | RUNTIME_VARS
    # GOMEMLIMIT is the container's memory limit (compose cannot derive one from the other).
    assert memory_bytes(env["GOMEMLIMIT"].replace("MiB", "Mi")) == memory_bytes(
        djftpd["mem_limit"].replace("m", "Mi")
    )
    assert {k for k in web["environment"] if k.startswith("DJFTPD_")} <= set(
        README_VARS
    )
    home = env["DJFTPD_HOME_ROOT"]
    assert f"spool:{env['DJFTPD_SPOOL_DIR']}" in djftpd["volumes"]
    assert "spool" in compose["volumes"]
    for svc in (djftpd, web):
        assert f"homes:{home}" in svc["volumes"]
        assert "djftpd_secret" in svc["secrets"]
        assert svc["environment"]["DJFTPD_SECRET_FILE"] == "/run/secrets/djftpd_secret"
    assert "homes" in compose["volumes"]
    assert "djftpd_secret" in compose["secrets"]
    passive = port_range(env["DJFTPD_PASSIVE_PORTS"])
    published = set()
    for spec in djftpd["ports"]:
        *_, outside, inside = spec.split(":")
        if port_range(inside) & passive:
            assert outside == inside, "PASV announces the container's port number"
            published |= port_range(inside)
    assert published == passive
    assert go_duration(djftpd["stop_grace_period"]) >= (
        go_duration(env["DJFTPD_SHUTDOWN_GRACE"])
        + events_flush_seconds()
        + MARGIN_SECONDS
    )
    assert djftpd["user"].split(":")[0] not in ("0", "root")
    assert djftpd["read_only"] is True
    assert djftpd["cap_drop"] == ["ALL"]
    assert djftpd["build"]["dockerfile"] == "deploy/Dockerfile"
    # FTPS required, the certificate and key from compose secrets.
    assert env["DJFTPD_TLS_MODE"] == "required"
    for key in ("DJFTPD_TLS_CERT", "DJFTPD_TLS_KEY"):
        name = env[key].removeprefix("/run/secrets/")
        assert name in djftpd["secrets"], key
        assert compose["secrets"][name]["file"].startswith("./djftpd_tls."), key
        assert (
            Path(compose["secrets"][name]["file"]).name
            in (DEPLOY / ".gitignore").read_text().split()
        ), f"{key}: the local file must not be committed"


