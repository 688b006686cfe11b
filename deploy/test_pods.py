"""What every rendered deployment must get right, whichever way it was rendered: each
kustomization (base, scale-out overlay, examples) and each values file of the Helm chart.

Checked on the rendered objects, strictly decoded (deploylib.load_yaml_text refuses duplicate
keys; kubernetes-validate refuses unknown fields against the 1.30 and newest schemas).
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from deploylib import (
    AWS_VARS,
    DJANGO,
    MARGIN_SECONDS,
    MIN_KUBERNETES,
    NODE_PORTS,
    PENDING_VARS,
    README_VARS,
    RUNTIME_VARS,
    SIDECAR,
    USER_SECRETS,
    check_sftp,
    container,
    events_flush_seconds,
    find,
    ftp_workloads,
    go_duration,
    kubernetes_validate,
    listen_port,
    named_port,
    pod_spec,
    port_range,
    prestop_sleep,
    selected,
    sidecar_env,
    tier,
    workloads,
)

Docs = list[dict[str, Any]]
# Custom resources: no schema in kubernetes-validate; their fields are checked below.
CUSTOM_KINDS = {
    ("cert-manager.io/v1", "Certificate"): {"secretName", "dnsNames", "privateKey", "issuerRef"},
    ("monitoring.coreos.com/v1", "PodMonitor"): {"selector", "podMetricsEndpoints"},
}


def test_objects_match_kubernetes_schemas(rendered: tuple[str, Docs]) -> None:
    """Strict: an unknown or misspelt field anywhere fails, as the API server's strict field
    validation (kubectl apply --validate=strict) would reject it."""
    kv = kubernetes_validate()
    _, docs = rendered
    for d in docs:
        custom = CUSTOM_KINDS.get((d["apiVersion"], d["kind"]))
        if custom is not None:
            assert set(d) == {"apiVersion", "kind", "metadata", "spec"}, d["kind"]
            assert set(d["spec"]) <= custom, f"{d['kind']}: {sorted(set(d['spec']) - custom)}"
            continue
        for version in (MIN_KUBERNETES, kv.latest_version()):
            try:
                kv.validate(d, version, strict=True)
            except kv.ValidationError as e:
                raise AssertionError(
                    f"{d['kind']}/{d['metadata']['name']} on {version}: "
                    f"{e.message} at {list(e.path)}"
                ) from None


def test_images_are_pinned(rendered: tuple[str, Docs]) -> None:
    """Every container image names a registry and a version tag or a digest, never `latest`
    (a floating tag makes two pods of one Deployment run different code)."""
    _, docs = rendered
    for w in workloads(docs):
        spec = pod_spec(w)
        for c in spec["containers"] + spec.get("initContainers", []):
            image = c["image"]
            name, _, digest = image.partition("@")
            repo, _, tag = name.rpartition(":") if "/" not in name.rpartition(":")[2] else (name, "", "")
            assert repo and "/" in repo or repo.count("/") == 0, image
            assert not digest or re.fullmatch(r"sha256:[0-9a-f]{64}", digest), image
            m = {"tag": tag, "digest": digest}
            assert m["tag"] or m["digest"], f"{c['name']}: {image} is untagged"
            assert m["tag"] != "latest", f"{c['name']}: {image}"
            if m["tag"] and not m["digest"]:
                assert re.search(r"\d", m["tag"]), f"{c['name']}: {image}: not a version"


def test_references_resolve(rendered: tuple[str, Docs]) -> None:
    _, docs = rendered
    rendered_secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    for w in workloads(docs):
        spec = pod_spec(w)
        external = set(USER_SECRETS)
        reload = w["metadata"].get("annotations", {}).get("secret.reloader.stakater.com/reload")
        if reload:
            external.add(reload)
        for v in spec.get("volumes", []):
            sources = set(v) - {"name"}
            assert len(sources) == 1, f"volume {v['name']} has sources {sorted(sources)}"
            if "persistentVolumeClaim" in v:
                find(docs, "PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"])
            if "secret" in v and v["secret"]["secretName"] in external:
                assert v["secret"]["secretName"] not in rendered_secrets, (
                    "a rendered Secret would overwrite the one kept outside these manifests"
                )
            elif "secret" in v:
                secret = find(docs, "Secret", v["secret"]["secretName"])
                keys = set(secret.get("data", {})) | set(secret.get("stringData", {}))
                for item in v["secret"].get("items", []):
                    assert item["key"] in keys
        claims = {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
        for c in spec["containers"] + spec.get("initContainers", []):
            for src in c.get("envFrom", []):
                find(docs, "ConfigMap", src["configMapRef"]["name"])
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] not in external:
                    find(docs, "Secret", ref["name"])
            mounts = {m["name"] for m in c.get("volumeMounts", [])}
            assert mounts <= {v["name"] for v in spec.get("volumes", [])} | claims, c["name"]


def test_env_names_are_documented(rendered: tuple[str, Docs]) -> None:
    _, docs = rendered
    allowed = set(README_VARS) | PENDING_VARS | RUNTIME_VARS
    for w in ftp_workloads(docs):
        spec = pod_spec(w)
        env = sidecar_env(docs, spec)
        names = {n for n in env if not AWS_VARS.fullmatch(n)}
        assert names <= allowed, f"sidecar variables not in README: {sorted(names - allowed)}"
        for key in [k for k, v in README_VARS.items() if v == "(required)"]:
            assert key in env, f"required {key} not set for the sidecar"
        assert ("DJFTPD_SECRET" in env) != ("DJFTPD_SECRET_FILE" in env)
    for w in workloads(docs):
        for c in pod_spec(w)["containers"]:
            names = {e["name"] for e in c.get("env", []) if e["name"].startswith("DJFTPD_")}
            assert names <= allowed, f"{c['name']}: {sorted(names - allowed)} not in README"


def test_go_memory_limit_follows_the_container_limit(rendered: tuple[str, Docs]) -> None:
    """GOMEMLIMIT is the djftpd container's own memory limit (downward API), so the Go
    garbage collector works harder before the kernel's OOM killer ends the process."""
    _, docs = rendered
    for w in ftp_workloads(docs):
        c = container(pod_spec(w), SIDECAR)
        env = {e["name"]: e for e in c["env"]}
        ref = env["GOMEMLIMIT"]["valueFrom"]["resourceFieldRef"]
        assert ref["resource"] == "limits.memory"
        assert ref.get("containerName") == SIDECAR
        assert ref.get("divisor", "1") in ("1", 1), "GOMEMLIMIT is in bytes without a unit"
        assert c["resources"]["limits"]["memory"]


def test_secret_file_and_homes_are_mounted(rendered: tuple[str, Docs]) -> None:
    _, docs = rendered
    for w in ftp_workloads(docs):
        spec = pod_spec(w)
        env = sidecar_env(docs, spec)
        vols = {v["name"]: v for v in spec["volumes"]}
        for c in (container(spec, SIDECAR), container(spec, DJANGO)):
            mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
            # Django answers absolute home paths: both must see the homes at the same path.
            home = mounts.get(env["DJFTPD_HOME_ROOT"])
            assert home, f"{c['name']}: homes not at DJFTPD_HOME_ROOT"
            source = vols[home["name"]]
            if "DJFTPD_STORAGE" in env and env["DJFTPD_STORAGE"].startswith("s3://"):
                assert "emptyDir" in source, "object storage: no claim for the homes"
            else:
                assert "persistentVolumeClaim" in source, c["name"]
            assert not home.get("readOnly")
    # Every pod that runs Django reads the secret, from the same Secret.
    names = set()
    for w in workloads(docs):
        spec = pod_spec(w)
        vols = {v["name"]: v for v in spec["volumes"]}
        for c in spec["containers"]:
            if c["name"] not in (SIDECAR, DJANGO):
                continue
            file = {e["name"]: e.get("value") for e in c.get("env", [])}.get(
                "DJFTPD_SECRET_FILE"
            ) or sidecar_env(docs, spec)["DJFTPD_SECRET_FILE"]
            m = {m["mountPath"]: m for m in c["volumeMounts"]}.get(str(Path(file).parent))
            assert m, f"{w['metadata']['name']}/{c['name']}: secret not mounted"
            assert m.get("readOnly"), c["name"]
            secret = vols[m["name"]]["secret"]
            assert Path(file).name in {i["path"] for i in secret.get("items", [])}
            names.add(secret["secretName"])
    assert len(names) == 1, f"the containers read different Secrets: {sorted(names)}"


def test_tls_is_required_with_the_certificate_mounted(rendered: tuple[str, Docs]) -> None:
    """FTP sends passwords in clear text without TLS: the shipped sidecar requires it (or
    implicit TLS), with the certificate and key read from a mounted kubernetes.io/tls Secret
    directory."""
    _, docs = rendered
    for w in ftp_workloads(docs):
        spec = pod_spec(w)
        env = sidecar_env(docs, spec)
        assert env.get("DJFTPD_TLS_MODE") in ("required", "implicit")
        vols = {v["name"]: v for v in spec["volumes"]}
        mounts = {m["mountPath"]: m for m in container(spec, SIDECAR)["volumeMounts"]}
        for key, item in (("DJFTPD_TLS_CERT", "tls.crt"), ("DJFTPD_TLS_KEY", "tls.key")):
            path = Path(env[key])
            m = mounts.get(str(path.parent))
            assert m, f"{key}: {path.parent} is not a mount of the sidecar"
            assert m.get("readOnly") and "subPath" not in m, "renewals must reach the files"
            secret = vols[m["name"]]["secret"]
            assert secret["secretName"] in USER_SECRETS
            items = {i["key"]: i["path"] for i in secret.get("items", [])}
            assert items.get(item, item) == path.name, key
        for cert in [d for d in docs if d["kind"] == "Certificate"]:
            assert cert["spec"]["secretName"] in {
                vols[m["name"]]["secret"]["secretName"]
                for m in mounts.values()
                if "secret" in vols[m["name"]]
            }


def test_event_spool_is_on_its_own_writable_volume(rendered: tuple[str, Docs]) -> None:
    _, docs = rendered
    for w in ftp_workloads(docs):
        spec = pod_spec(w)
        env = sidecar_env(docs, spec)
        spool = env["DJFTPD_SPOOL_DIR"]
        assert not Path(spool).is_relative_to(env["DJFTPD_HOME_ROOT"]), "users would see it"
        mounts = {m["mountPath"]: m for m in container(spec, SIDECAR)["volumeMounts"]}
        assert spool in mounts, "DJFTPD_SPOOL_DIR is on the read-only root filesystem"
        assert not mounts[spool].get("readOnly")
        claims = {t["metadata"]["name"] for t in w["spec"].get("volumeClaimTemplates", [])}
        if w["kind"] == "StatefulSet":
            # Each replica's own, persistent: replayed by the pod that replaces it.
            assert mounts[spool]["name"] in claims
        else:
            vol = next(v for v in spec["volumes"] if v["name"] == mounts[spool]["name"])
            limit = vol["emptyDir"]["sizeLimit"]
            spool_max = int(
                env.get("DJFTPD_SPOOL_MAX_BYTES", README_VARS["DJFTPD_SPOOL_MAX_BYTES"])
            )
            assert limit.endswith("Mi") and int(limit[:-2]) * 2**20 > spool_max


def test_probes_use_the_ops_port(rendered: tuple[str, Docs]) -> None:
    _, docs = rendered
    for w in ftp_workloads(docs):
        spec = pod_spec(w)
        env = sidecar_env(docs, spec)
        host, ops_port = listen_port(env.get("DJFTPD_OPS_LISTEN", README_VARS["DJFTPD_OPS_LISTEN"]))
        assert host in ("0.0.0.0", ""), "the kubelet probes the pod IP, not 127.0.0.1"
        c = container(spec, SIDECAR)
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = c[probe]["httpGet"]
            assert get["path"] == path, probe
            assert named_port(c, get["port"]) == ops_port, probe
        assert "exec" not in str(c.get("lifecycle", {})), "no shell in the image: no exec hooks"


def deregistration_seconds(docs: Docs) -> int:
    """The longest time a load balancer in docs may still send new connections to a pod that
    is terminating: AWS's deregistration delay, Azure's probe window, else 0."""
    longest = 0
    for svc in [d for d in docs if d["kind"] == "Service"]:
        ann = svc["metadata"].get("annotations", {})
        tg = ann.get("service.beta.kubernetes.io/aws-load-balancer-target-group-attributes", "")
        attrs = dict(a.split("=", 1) for a in tg.split(",") if a)
        if "deregistration_delay.timeout_seconds" in attrs:
            # Running transfers must outlive the delay: the NLB must not cut them.
            assert attrs.get("deregistration_delay.connection_termination.enabled") != "true"
            longest = max(longest, int(attrs["deregistration_delay.timeout_seconds"]))
        interval = ann.get("service.beta.kubernetes.io/azure-load-balancer-health-probe-interval")
        if interval:
            probes = ann.get("service.beta.kubernetes.io/azure-load-balancer-health-probe-num-of-probe", "2")
            longest = max(longest, int(interval) * int(probes))
    return longest


def test_termination_grace_covers_the_drain(rendered: tuple[str, Docs]) -> None:
    """The FTP pod: the listener stays open for the load balancer's deregistration (preStop),
    then transfers get DJFTPD_SHUTDOWN_GRACE and the events their flush, then gunicorn its
    graceful timeout, all before SIGKILL."""
    _, docs = rendered
    for w in ftp_workloads(docs):
        spec = pod_spec(w)
        env = sidecar_env(docs, spec)
        grace = go_duration(env.get("DJFTPD_SHUTDOWN_GRACE", README_VARS["DJFTPD_SHUTDOWN_GRACE"]))
        total = spec["terminationGracePeriodSeconds"]
        sidecar = container(spec, SIDECAR)
        # At least the cloud default health-check window (GKE, AKS: 2-3 probes of 5-10 s).
        assert prestop_sleep(sidecar) >= max(20, deregistration_seconds(docs))
        sidecar_done = prestop_sleep(sidecar) + grace + events_flush_seconds()
        assert total >= sidecar_done + MARGIN_SECONDS, (
            f"terminationGracePeriodSeconds {total} < preStop + DJFTPD_SHUTDOWN_GRACE + margin"
        )
        # Django stays up until the sidecar drained and flushed its events, then gets its
        # own graceful timeout before the kill.
        django = container(spec, DJANGO)
        assert prestop_sleep(django) >= sidecar_done
        m = re.search(r"--graceful-timeout[= ](\d+)", " ".join(django["command"]))
        assert m, "gunicorn needs an explicit --graceful-timeout to fit in the grace period"
        assert prestop_sleep(django) + int(m.group(1)) <= total
        # This gunicorn serves the sidecar only, over the loopback interface.
        assert "--bind=127.0.0.1:8000" in django["command"]
        assert env["DJFTPD_DJANGO_URL"].startswith("http://127.0.0.1:8000/")


RESTRICTED_VOLUMES = {
    "configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
    "persistentVolumeClaim", "projected", "secret",
}
BASELINE_CAPS = {
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
    "NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
}


def pod_security_level(spec: dict[str, Any]) -> str:
    """The strictest Pod Security Standard (restricted, baseline, privileged) the pod meets,
    for the fields these manifests use (kubernetes.io/docs/concepts/security/pod-security-standards)."""
    cs = spec["containers"] + spec.get("initContainers", [])
    psc = spec.get("securityContext", {})
    baseline = not (
        spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC")
        or any(p.get("hostPort") for c in cs for p in c.get("ports", []))
        or any("hostPath" in v for v in spec.get("volumes", []))
        or any(c.get("securityContext", {}).get("privileged") for c in cs)
        or any(
            set(c.get("securityContext", {}).get("capabilities", {}).get("add", [])) - BASELINE_CAPS
            for c in cs
        )
    )
    if not baseline:
        return "privileged"
    restricted = all(v.keys() - {"name"} <= RESTRICTED_VOLUMES for v in spec.get("volumes", []))
    for c in cs:
        sc = {**{k: psc[k] for k in ("runAsNonRoot", "runAsUser", "seccompProfile") if k in psc},
              **c.get("securityContext", {})}
        caps = sc.get("capabilities", {})
        restricted &= (
            sc.get("runAsNonRoot") is True
            and sc.get("runAsUser", 1) != 0
            and sc.get("allowPrivilegeEscalation") is False
            and "ALL" in caps.get("drop", [])
            and set(caps.get("add", [])) <= {"NET_BIND_SERVICE"}
            and sc.get("seccompProfile", {}).get("type") in ("RuntimeDefault", "Localhost")
        )
    return "restricted" if restricted else "baseline"


# The level each rendering's pods need, as deploy/README.md "Pod Security" states it:
# hostPorts need privileged; the homes-init step (root with CHOWN/FOWNER) baseline.
POD_SECURITY = {"statefulset-scaleout": "privileged", "example-scaleout-s3": "privileged",
                "helm-scaleout": "privileged", "example-aks": "baseline",
                "helm-rwx-initowner": "baseline"}


def test_pod_security_level(rendered: tuple[str, Docs]) -> None:
    name, docs = rendered
    levels = {pod_security_level(pod_spec(w)) for w in ftp_workloads(docs)}
    assert levels == {POD_SECURITY.get(name, "restricted")}, name
    assert pod_security_level(pod_spec(tier(docs, "web"))) == "restricted"
    readme = (Path(__file__).parent / "README.md").read_text()
    for level in levels:
        assert f'Pod Security level "{level}"' in readme or level == "restricted"


def test_security_context(rendered: tuple[str, Docs]) -> None:
    _, docs = rendered
    for w in workloads(docs):
        spec = pod_spec(w)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec.get("automountServiceAccountToken") is False
        # Else a Service named djftpd injects DJFTPD_SERVICE_HOST & co. into the sidecar.
        assert spec.get("enableServiceLinks") is False
        assert not spec.get("hostNetwork")
        for c in spec["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["capabilities"]["drop"] == ["ALL"], c["name"]
            assert not sc["capabilities"].get("add"), c["name"]
            assert not sc.get("privileged"), c["name"]
            assert sc.get("runAsUser", 1) != 0, c["name"]
            res = c["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]), c["name"]
            assert "memory" in res["limits"], c["name"]


# --- item 1: web and FTP apart ---------------------------------------------------------------


def selector_of(d: dict[str, Any]) -> dict[str, str]:
    if d["kind"] == "Service":
        return d["spec"].get("selector", {})
    if d["kind"] in ("PodDisruptionBudget", "NetworkPolicy"):
        key = "podSelector" if d["kind"] == "NetworkPolicy" else "selector"
        return d["spec"][key]["matchLabels"]
    if d["kind"] == "PodMonitor":
        return d["spec"]["selector"]["matchLabels"]
    return d["spec"]["selector"]["matchLabels"]


def test_web_and_ftp_scale_apart(rendered: tuple[str, Docs]) -> None:
    """The website is its own autoscaled Deployment without djftpd; its Service selects only
    its pods, so an FTP pod that is not ready never takes the site out of the Service; every
    FTP-side object selects only the FTP pods."""
    _, docs = rendered
    web, ftp = tier(docs, "web"), tier(docs, "ftp")
    web_id = f"Deployment/{web['metadata']['name']}"
    ftp_id = f"{ftp['kind']}/{ftp['metadata']['name']}"
    assert web["kind"] == "Deployment"
    assert [c["name"] for c in pod_spec(web)["containers"]] == [DJANGO]
    assert {c["name"] for c in pod_spec(ftp)["containers"]} == {DJANGO, SIDECAR}
    for w in (web, ftp):
        # Each workload's selector picks its own pods only.
        assert selected(docs, w["spec"]["selector"]["matchLabels"]) == [
            f"{w['kind']}/{w['metadata']['name']}"
        ]
        # A label specific to djftpd in every selector, never a bare name=django.
        assert "djftpd" in w["spec"]["selector"]["matchLabels"].values()
    hpa = [d for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    if hpa:
        (h,) = hpa
        assert h["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": web["metadata"]["name"]}
        assert h["spec"]["minReplicas"] >= 2
        assert "replicas" not in web["spec"] or web["spec"]["replicas"] >= 2
    else:
        assert web["spec"]["replicas"] >= 2
    services = [d for d in docs if d["kind"] == "Service"]
    http = [s for s in services if any(p["name"] == "http" for p in s["spec"]["ports"])]
    assert [selected(docs, selector_of(s)) for s in http] == [[web_id]]
    for s in services:
        if s not in http:
            assert selected(docs, selector_of(s)) == [ftp_id], s["metadata"]["name"]
    pdbs = {selected(docs, selector_of(p))[0]: p for p in docs if p["kind"] == "PodDisruptionBudget"}
    assert set(pdbs) == {web_id, ftp_id}
    # One web pod always serves during a drain; the FTP PDB never blocks one.
    assert pdbs[web_id]["spec"].get("minAvailable") == 1
    assert pdbs[ftp_id]["spec"].get("maxUnavailable") == 1
    for kind in ("NetworkPolicy", "PodMonitor"):
        for d in [d for d in docs if d["kind"] == kind]:
            assert selected(docs, selector_of(d)) == [ftp_id]


# --- item 5: the passive range, defined once --------------------------------------------------


def test_passive_range_is_defined_once(rendered: tuple[str, Docs]) -> None:
    """DJFTPD_PASSIVE_PORTS, the container ports, the hostPorts, the FTP Service's ports and
    the NetworkPolicy's range are one set of numbers, outside the NodePort range, and larger
    than the number of control connections one client address may hold."""
    _, docs = rendered
    for w in ftp_workloads(docs):
        spec = pod_spec(w)
        env = sidecar_env(docs, spec)
        passive = port_range(env["DJFTPD_PASSIVE_PORTS"])
        assert not passive & NODE_PORTS, "a LoadBalancer's node ports are allocated there"
        per_ip = int(env.get("DJFTPD_MAX_CONNECTIONS_PER_IP", README_VARS["DJFTPD_MAX_CONNECTIONS_PER_IP"]))
        assert len(passive) > per_ip, "one client address could hold every passive port"
        if "DJFTPD_MAX_PASSIVE_PER_IP" in README_VARS:
            per_ip_passive = int(
                env.get("DJFTPD_MAX_PASSIVE_PER_IP", README_VARS["DJFTPD_MAX_PASSIVE_PER_IP"])
            )
            assert len(passive) > per_ip_passive
        c = container(spec, SIDECAR)
        pasv = [p for p in c["ports"] if p["name"].startswith("pasv-")]
        assert {p["containerPort"] for p in pasv} == passive
        assert all(p["name"] == f"pasv-{p['containerPort']}" for p in pasv)
        host_ports = {p["containerPort"]: p["hostPort"] for p in pasv if "hostPort" in p}
        if host_ports:
            assert host_ports == {p: p for p in passive}, "PASV announces the container port"
        ftp_service = [
            s for s in docs
            if s["kind"] == "Service" and s["spec"].get("type") == "LoadBalancer"
        ]
        assert bool(ftp_service) != bool(host_ports), "one way in: a load balancer or hostPorts"
        for svc in ftp_service:
            ports = {p["name"]: p for p in svc["spec"]["ports"]}
            ftp = ports.pop("ftp")
            assert named_port(c, ftp["targetPort"]) == listen_port(env["DJFTPD_LISTEN"])[1]
            if "ftps-implicit" in ports:
                implicit = ports.pop("ftps-implicit")
                assert env["DJFTPD_TLS_MODE"] == "implicit"
                assert named_port(c, implicit["targetPort"]) == listen_port(
                    env.get("DJFTPD_IMPLICIT_LISTEN", README_VARS["DJFTPD_IMPLICIT_LISTEN"])
                )[1]
            if "sftp" in ports:
                sftp = ports.pop("sftp")
                assert named_port(c, sftp["targetPort"]) == listen_port(env["DJFTPD_SFTP_LISTEN"])[1]
            # PASV announces the pod's port number, so the Service must not translate it.
            assert all(p["port"] == p["targetPort"] for p in ports.values())
            assert {p["port"] for p in ports.values()} == passive
            # No SNAT: the data connection must come from the control connection's address.
            assert svc["spec"]["externalTrafficPolicy"] == "Local"
        for np in [d for d in docs if d["kind"] == "NetworkPolicy"]:
            ranges = [
                port_range(f"{p['port']}-{p.get('endPort', p['port'])}")
                for rule in np["spec"]["ingress"]
                for p in rule["ports"]
                if "endPort" in p
            ]
            assert ranges == [passive]


# --- item 4: load balancers ---------------------------------------------------------------


def test_load_balancer_settings(rendered: tuple[str, Docs]) -> None:
    """No deprecated spec.loadBalancerIP; source ranges are CIDRs; the provider annotations
    are complete where used (one EIP per subnet with cross-zone balancing and client
    addresses kept; AKS's and MetalLB's fixed address is the announced one)."""
    _, docs = rendered
    for svc in [d for d in docs if d["kind"] == "Service"]:
        spec = svc["spec"]
        assert "loadBalancerIP" not in spec, "deprecated since Kubernetes 1.24"
        for cidr in spec.get("loadBalancerSourceRanges", []):
            ipaddress.ip_network(cidr)
        ann = svc["metadata"].get("annotations", {})
        aws = "service.beta.kubernetes.io/aws-load-balancer-"
        if ann.get(aws + "type") == "external":
            assert ann[aws + "nlb-target-type"] == "ip"
            eips = ann[aws + "eip-allocations"].split(",")
            assert len(eips) == len(ann[aws + "subnets"].split(","))
            assert "load_balancing.cross_zone.enabled=true" in ann[aws + "attributes"]
            assert "preserve_client_ip.enabled=true" in ann[aws + "target-group-attributes"]
        fixed = ann.get("service.beta.kubernetes.io/azure-load-balancer-ipv4") or ann.get(
            "metallb.universe.tf/loadBalancerIPs"
        )
        if fixed:
            assert ipaddress.ip_address(fixed).version == 4
            for w in ftp_workloads(docs):
                host = sidecar_env(docs, pod_spec(w))["DJFTPD_PUBLIC_HOST"]
                assert host in (fixed, "set-me-to-the-load-balancer-ipv4"), host


def test_no_floating_secret_between_containers(rendered: tuple[str, Docs]) -> None:
    """A rotation of the shared secret rolls every pod: the Secret's name carries a hash of
    its value (kustomize), or the pods a checksum of it (Helm), or, for a Secret kept
    elsewhere, the workloads ask Stakater Reloader to roll them."""
    _, docs = rendered
    for w in workloads(docs):
        spec = pod_spec(w)
        name = next(v["secret"]["secretName"] for v in spec["volumes"] if v["name"] == "djftpd-secret")
        reload = w["metadata"].get("annotations", {}).get("secret.reloader.stakater.com/reload")
        checksum = w["spec"]["template"]["metadata"].get("annotations", {}).get("checksum/secret")
        hashed = re.fullmatch(r".+-[a-z0-9]{10}", name) and find(docs, "Secret", name)
        assert hashed or checksum or reload == name, w["metadata"]["name"]


def test_ops_service_for_prometheus_and_purges(rendered: tuple[str, Docs]) -> None:
    """A headless Service over the FTP pods' ops port: Prometheus scrapes it, and Django
    resolves its DNS records at purge time (no replica count to keep in step)."""
    _, docs = rendered
    ftp = tier(docs, "ftp")
    c = container(pod_spec(ftp), SIDECAR)
    env = sidecar_env(docs, pod_spec(ftp))
    _, ops_port = listen_port(env["DJFTPD_OPS_LISTEN"])
    ops = [
        s for s in docs
        if s["kind"] == "Service" and [p["name"] for p in s["spec"]["ports"]] == ["ops"]
    ]
    assert len(ops) == 1
    spec = ops[0]["spec"]
    assert spec["clusterIP"] == "None" and spec["publishNotReadyAddresses"] is True
    assert [named_port(c, p["targetPort"]) for p in spec["ports"]] == [ops_port]
    if ftp["kind"] == "StatefulSet":
        assert ftp["spec"]["serviceName"] == ops[0]["metadata"]["name"]
    for w in workloads(docs):
        for cont in pod_spec(w)["containers"]:
            assert "FTP_REPLICAS" not in {e["name"] for e in cont.get("env", [])}
    for pm in [d for d in docs if d["kind"] == "PodMonitor"]:
        (ep,) = pm["spec"]["podMetricsEndpoints"]
        assert named_port(c, ep["port"]) == ops_port and ep["path"] == "/metrics"


def test_network_policy_admits_ftp_from_anywhere_and_ops_from_few(rendered: tuple[str, Docs]) -> None:
    _, docs = rendered
    for np in [d for d in docs if d["kind"] == "NetworkPolicy"]:
        ftp = tier(docs, "ftp")
        env = sidecar_env(docs, pod_spec(ftp))
        _, ops_port = listen_port(env["DJFTPD_OPS_LISTEN"])
        assert np["spec"]["policyTypes"] == ["Ingress"]
        open_rules = [r for r in np["spec"]["ingress"] if "from" not in r]
        open_ports = {p["port"] for r in open_rules for p in r["ports"]}
        assert listen_port(env["DJFTPD_LISTEN"])[1] in open_ports
        assert ops_port not in open_ports, "the ops port must not be open to everyone"
        (ops_rule,) = [r for r in np["spec"]["ingress"] if "from" in r]
        assert [p["port"] for p in ops_rule["ports"]] == [ops_port]
        peers = ops_rule["from"]
        assert {tuple(sorted(p)) for p in peers} == {("podSelector",), ("namespaceSelector",)}
        pods = next(p["podSelector"]["matchLabels"] for p in peers if "podSelector" in p)
        # Django's web pods send the cache purges.
        assert selected(docs, pods) == sorted(
            f"{w['kind']}/{w['metadata']['name']}" for w in workloads(docs)
        )


def test_sftp_port_and_host_keys(rendered: tuple[str, Docs]) -> None:
    """Where SFTP is on (components/sftp, chart sftp.enabled): published, host keys from a
    Secret mounted read-only (deploylib.check_sftp)."""
    _, docs = rendered
    check_sftp(docs)
