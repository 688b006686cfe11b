"""The kustomizations themselves: inputs, renderers, the base's kustomize v2 compatibility,
and what only they do (components, overlays, generated names)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
import yaml
from deploylib import (
    BASE,
    CERTIFICATE_EXAMPLE,
    COMPONENTS,
    DEPLOY,
    KUBE,
    KUBECTL_HINT,
    KUSTOMIZATIONS,
    OVERLAY,
    SIDECAR,
    USER_SECRETS,
    check_sftp,
    container,
    find,
    kustomize_tools,
    listen_port,
    load_yaml_docs,
    normalized,
    pod_spec,
    port_range,
    render,
    render_fallback,
    render_with_tool,
    sidecar_env,
    tier,
    unavailable,
)


@pytest.mark.parametrize(
    "path",
    # Helm templates are not YAML until rendered (test_helm.py renders them).
    sorted(
        p
        for p in [*DEPLOY.rglob("*.yaml"), *DEPLOY.rglob("*.yml")]
        if "templates" not in p.relative_to(DEPLOY).parts
    ),
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_yaml_parses(path: Path) -> None:
    docs = load_yaml_docs(path)
    assert docs or path.name == "default-values.yaml", f"{path} is empty"
    for d in docs:
        assert isinstance(d, dict), f"{path}: a document is not a mapping"


@pytest.mark.parametrize("name", sorted(KUSTOMIZATIONS))
def test_kustomization_inputs_exist(name: str) -> None:
    path = KUSTOMIZATIONS[name]
    kz = yaml.safe_load((path / "kustomization.yaml").read_text())
    for res in kz.get("resources", []) + kz.get("components", []):
        target = path / res
        assert target.exists(), f"{name}: {res} missing"
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), f"{res} is no kustomization"
        else:
            assert load_yaml_docs(target), f"{res} holds no object"
    for gen in kz.get("configMapGenerator", []):
        for env in gen.get("envs", []) + ([gen["env"]] if "env" in gen else []):
            assert (path / env).is_file(), f"{name}: generator file {env} missing"


def test_every_component_is_used_by_an_example() -> None:
    """Each component is rendered (and so validated) in at least one committed kustomization."""
    used = set()
    for path in KUSTOMIZATIONS.values():
        kz = yaml.safe_load((path / "kustomization.yaml").read_text())
        used |= {(path / c).resolve() for c in kz.get("components", [])}
    assert {p.resolve() for p in COMPONENTS.iterdir()} <= used


def test_real_kustomize_renders_what_the_fallback_does() -> None:
    """Every real kustomize on PATH renders the base to exactly the fallback's objects (hash
    suffixes aside): so the checks mean the same with and without kubectl."""
    tools = kustomize_tools()
    if not tools:
        unavailable("kubectl", KUBECTL_HINT)
    expected = normalized(render_fallback(BASE))
    for cmd in tools:
        got = normalized(render_with_tool(BASE, cmd))
        assert [(d["kind"], d["metadata"]["name"]) for d in got] == [
            (d["kind"], d["metadata"]["name"]) for d in expected
        ], " ".join(cmd)
        for g, e in zip(got, expected, strict=True):
            assert g == e, f"{' '.join(cmd)}: {g['kind']}/{g['metadata']['name']} differs"


def test_base_needs_nothing_newer_than_kustomize_v2() -> None:
    """kubectl 1.14-1.20 (kustomize v2.0.3; Debian bookworm's kubernetes-client is 1.20)
    renders the base as committed. Checked here too, for machines with only a newer kubectl."""
    kz = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    v2_fields = {
        "apiVersion", "kind", "resources", "bases", "configMapGenerator", "secretGenerator",
        "generatorOptions", "images", "namespace", "namePrefix", "nameSuffix",
        "commonLabels", "commonAnnotations", "patchesStrategicMerge", "patchesJson6902", "vars",
    }
    assert set(kz) <= v2_fields, f"kustomize v2.0.3 lacks {sorted(set(kz) - v2_fields)}"
    assert not [r for r in kz["resources"] if (BASE / r).is_dir()]
    for gen in kz.get("configMapGenerator", []) + kz.get("secretGenerator", []):
        assert "envs" not in gen, "kustomize v2.0.3 reads `env: <file>`, not `envs:`"


def test_strict_validation_catches_a_typo() -> None:
    """Pins that the schema check is strict: a misspelt field deep in a pod, which the
    lenient mode lets through, fails; so does a duplicate key."""
    from deploylib import MIN_KUBERNETES, kubernetes_validate, load_yaml_text

    kv = kubernetes_validate()
    for version in (MIN_KUBERNETES, kv.latest_version()):
        dep = find(render_fallback(BASE), "Deployment", "djftpd")
        kv.validate(dep, version, strict=True)
        container(pod_spec(dep), SIDECAR)["readinesProbe"] = {"httpGet": {"path": "/", "port": 1}}
        kv.validate(dep, version, strict=False)
        with pytest.raises(kv.ValidationError, match="readinesProbe"):
            kv.validate(dep, version, strict=True)
        dep["metadata"]["lables"] = {"a": "b"}
        del container(pod_spec(dep), SIDECAR)["readinesProbe"]
        with pytest.raises(kv.ValidationError, match="lables"):
            kv.validate(dep, version, strict=True)
    with pytest.raises(yaml.YAMLError, match="duplicate keys"):
        load_yaml_text("a: 1\nb: 2\na: 3\n")


def test_certificate_example_makes_the_mounted_secret() -> None:
    """The cert-manager example writes the Secret the pods mount, and no kustomization
    includes it (it needs cert-manager's CRDs)."""
    [cert] = load_yaml_docs(CERTIFICATE_EXAMPLE)
    assert (cert["apiVersion"], cert["kind"]) == ("cert-manager.io/v1", "Certificate")
    assert cert["spec"]["secretName"] in USER_SECRETS
    assert cert["spec"]["dnsNames"] and cert["spec"]["issuerRef"]["name"]
    for path in KUSTOMIZATIONS.values():
        kz = yaml.safe_load((path / "kustomization.yaml").read_text())
        assert not [r for r in kz.get("resources", []) if "certificate" in r]


def test_base_public_host_comes_from_the_configmap() -> None:
    docs = render(BASE)
    spec = pod_spec(find(docs, "Deployment", "djftpd"))
    c = container(spec, SIDECAR)
    assert "DJFTPD_PUBLIC_HOST" not in {e["name"] for e in c.get("env", [])}
    assert "DJFTPD_PUBLIC_HOST" in find(docs, "ConfigMap", "djftpd-config")["data"]


def test_base_homes_bind_on_any_default_class() -> None:
    """ReadWriteOnce on the default storage class binds on every common cluster; then one
    FTP replica, recreated (not rolled: the claim cannot be on two nodes)."""
    docs = render(BASE)
    pvc = find(docs, "PersistentVolumeClaim", "ftp-homes")
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "storageClassName" not in pvc["spec"], "unset: the cluster's default class"
    ftp = tier(docs, "ftp")
    assert ftp["spec"]["replicas"] == 1 and ftp["spec"]["strategy"] == {"type": "Recreate"}
    # The web pods do not mount the RWO claim (they may run on other nodes).
    assert "persistentVolumeClaim" not in str(pod_spec(tier(docs, "web"))["volumes"])


def component_render(tmp_path: Path, *components: str) -> list[dict]:
    """The base with the named components, rendered by the real kustomize."""
    kz = tmp_path / "kz"
    kz.mkdir()
    rel = Path("..") / ".." / Path(*[".."] * (len(kz.parts) - 1))
    (kz / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [str(rel / BASE.relative_to("/"))],
                "components": [str(rel / (COMPONENTS / c).relative_to("/")) for c in components],
            }
        )
    )
    tools = kustomize_tools()
    if not tools:
        unavailable("kubectl", KUBECTL_HINT)
    return render_with_tool(kz, tools[0])


def test_homes_rwx_component(tmp_path: Path) -> None:
    docs = component_render(tmp_path, "homes-rwx")
    pvc = find(docs, "PersistentVolumeClaim", "ftp-homes")
    assert pvc["spec"]["accessModes"] == ["ReadWriteMany"]
    # A placeholder that binds nowhere: the claim stays Pending until the class is chosen.
    assert pvc["spec"]["storageClassName"].startswith("set-me")
    ftp = tier(docs, "ftp")
    assert ftp["spec"]["strategy"]["type"] == "RollingUpdate"
    assert ftp["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 0}


def test_homes_init_component(tmp_path: Path) -> None:
    """Where the CSI driver ignores fsGroup, an init step gives the homes root to djftpd's
    UID and group before djftpd starts."""
    docs = component_render(tmp_path, "homes-init")
    spec = pod_spec(tier(docs, "ftp"))
    (init,) = spec["initContainers"]
    env = sidecar_env(docs, spec)
    assert init["volumeMounts"] == [{"name": "homes", "mountPath": env["DJFTPD_HOME_ROOT"]}]
    sidecar = container(spec, SIDECAR)
    uid, gid = sidecar["securityContext"]["runAsUser"], sidecar["securityContext"]["runAsGroup"]
    assert f"chown {uid}:{gid} {env['DJFTPD_HOME_ROOT']}" in init["command"][-1]
    assert set(init["securityContext"]["capabilities"]["add"]) == {"CHOWN", "FOWNER"}


def test_storage_s3_component(tmp_path: Path) -> None:
    """Object storage: DJFTPD_STORAGE=s3://..., credentials from a Secret through the AWS
    SDK's variables, no homes claim left (the recommended way to scale out)."""
    docs = component_render(tmp_path, "storage-s3")
    assert not [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    spec = pod_spec(tier(docs, "ftp"))
    env = sidecar_env(docs, spec)
    assert re.fullmatch(r"s3://[a-z0-9.-]+(/[\w./-]+)?", env["DJFTPD_STORAGE"])
    assert env["AWS_SECRET_ACCESS_KEY"]["secretKeyRef"]["name"] in USER_SECRETS
    homes = next(v for v in spec["volumes"] if v["name"] == "homes")
    assert set(homes) == {"name", "emptyDir"}


def test_sftp_component(tmp_path: Path) -> None:
    """Optional SFTP: a port on the pod and the Service, host keys from a Secret mounted
    read-only; without components/networkpolicy nothing else changes."""
    docs = component_render(tmp_path, "sftp")
    assert check_sftp(docs) == 2222
    assert not [d for d in docs if d["kind"] == "NetworkPolicy"]


def test_sftp_component_opens_the_network_policy(tmp_path: Path) -> None:
    docs = component_render(tmp_path, "networkpolicy", "sftp")
    port = check_sftp(docs)
    policy = find(docs, "NetworkPolicy", "djftpd")
    assert {"protocol": "TCP", "port": port} in policy["spec"]["ingress"][0]["ports"]


def test_existing_secret_component(tmp_path: Path) -> None:
    """For external-secrets / sealed-secrets: no Secret rendered (applying would overwrite
    theirs), both Deployments read the fixed name and ask Reloader to roll on change."""
    docs = component_render(tmp_path, "existing-secret")
    assert not [d for d in docs if d["kind"] == "Secret"]
    for w in (tier(docs, "ftp"), tier(docs, "web")):
        assert w["metadata"]["annotations"]["secret.reloader.stakater.com/reload"] == "djftpd-secret"
        vol = next(v for v in pod_spec(w)["volumes"] if v["name"] == "djftpd-secret")
        assert vol["secret"]["secretName"] == "djftpd-secret"


def test_a_new_secret_is_a_new_name(tmp_path: Path) -> None:
    """The base's secret is generated: another value gives another name, so `kubectl apply
    -k` rolls both Deployments, and every pod template names the same Secret."""
    tools = kustomize_tools()
    if not tools:
        unavailable("kubectl", KUBECTL_HINT)
    names = []
    for value in ("change-me", "another-value"):
        copy = tmp_path / value / "base"
        shutil.copytree(BASE, copy)
        kz = (copy / "kustomization.yaml").read_text().replace("secret=change-me", f"secret={value}")
        (copy / "kustomization.yaml").write_text(kz)
        docs = render_with_tool(copy, tools[0])
        (secret,) = [d for d in docs if d["kind"] == "Secret"]
        refs = {
            v["secret"]["secretName"]
            for w in (tier(docs, "ftp"), tier(docs, "web"))
            for v in pod_spec(w)["volumes"]
            if v["name"] == "djftpd-secret"
        }
        assert refs == {secret["metadata"]["name"]}
        names.append(secret["metadata"]["name"])
    assert names[0] != names[1]


def test_placeholder_secret_fails_closed() -> None:
    """An unedited base must not run with a known secret: djftpd refuses < 32 bytes."""
    kz = yaml.safe_load((BASE / "kustomization.yaml").read_text())
    (gen,) = kz["secretGenerator"]
    (literal,) = gen["literals"]
    assert literal.startswith("secret=") and len(literal.removeprefix("secret=").encode()) < 32


def test_scaleout_replicas_announce_their_node_on_host_ports() -> None:
    docs = render(OVERLAY)
    assert not [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "djftpd"]
    assert not [
        d for d in docs if d["kind"] == "Service" and d["spec"].get("type") == "LoadBalancer"
    ], "a load-balanced FTP Service would send data connections to any replica"
    sts = find(docs, "StatefulSet", "djftpd")
    spec = pod_spec(sts)
    assert sts["spec"]["replicas"] > 1
    env = sidecar_env(docs, spec)
    assert env["DJFTPD_PUBLIC_HOST"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    c = container(spec, SIDECAR)
    host_ports = {p["containerPort"]: p["hostPort"] for p in c["ports"] if "hostPort" in p}
    # EPSV carries no address: control and data must reach the same pod at the node address.
    assert host_ports.pop(listen_port(env["DJFTPD_LISTEN"])[1]) == 21
    # Implicit FTPS too, on its standard port.
    assert host_ports.pop(named_port_of(c, "ftps-implicit")) == 990
    assert all(cp == hp for cp, hp in host_ports.items())
    assert set(host_ports) == port_range(env["DJFTPD_PASSIVE_PORTS"])
    anti = spec["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    assert anti[0]["labelSelector"]["matchLabels"] == sts["spec"]["selector"]["matchLabels"]
    # The replicas share the homes: ReadWriteMany.
    assert find(docs, "PersistentVolumeClaim", "ftp-homes")["spec"]["accessModes"] == ["ReadWriteMany"]
    # external-dns publishes the nodes' external addresses, ready replicas only.
    public = find(docs, "Service", "djftpd-public")
    ann = public["metadata"]["annotations"]
    assert ann["external-dns.alpha.kubernetes.io/endpoints-type"] == "NodeExternalIP"
    assert ann["external-dns.alpha.kubernetes.io/hostname"]
    assert public["spec"]["clusterIP"] == "None"
    assert public["spec"]["publishNotReadyAddresses"] is False


def named_port_of(c: dict, name: str) -> int:
    return next(p["containerPort"] for p in c["ports"] if p["name"] == name)


def test_scaleout_pod_matches_the_base_pod() -> None:
    """The StatefulSet copies deployment-ftp.yaml's pod; only the intended fields may differ."""
    base = pod_spec(find(render(BASE), "Deployment", "djftpd"))
    scaled = pod_spec(find(render(OVERLAY), "StatefulSet", "djftpd"))
    scaled = {k: v for k, v in scaled.items() if k != "affinity"}
    # The StatefulSet's spool volume comes from its volumeClaimTemplates.
    base["volumes"] = [v for v in base["volumes"] if v["name"] != "djftpd-spool"]
    for b, s in zip(base["containers"], scaled["containers"], strict=True):
        for c in (b, s):
            for p in c.get("ports", []):
                p.pop("hostPort", None)
            c["env"] = [e for e in c.get("env", []) if e["name"] != "DJFTPD_PUBLIC_HOST"]
    assert scaled == base


def without_sftp(spec: dict) -> None:
    """Drops what components/sftp owns from an FTP pod: its variables, port, mount, volume."""
    sidecar = container(spec, SIDECAR)
    sidecar["env"] = [v for v in sidecar["env"] if not v["name"].startswith("DJFTPD_SFTP_")]
    sidecar["ports"] = [p for p in sidecar["ports"] if p["name"] != "sftp"]
    keys = "djftpd-sftp-host-keys"
    sidecar["volumeMounts"] = [m for m in sidecar["volumeMounts"] if m["name"] != keys]
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] != keys]


def test_overlays_and_examples_keep_the_base_pods(tmp_path: Path) -> None:
    """Components change only what they are for: the FTP and web pods of every example are
    the base's, but for the fields each component owns."""
    base = render(BASE)
    for name, path in KUSTOMIZATIONS.items():
        if not name.startswith("example-") or name == "example-scaleout-s3":
            continue
        docs = render(path)
        for component in ("ftp", "web"):
            b, e = pod_spec(tier(base, component)), pod_spec(tier(docs, component))
            e = {k: v for k, v in e.items() if k != "initContainers"}
            if component == "ftp":
                without_sftp(e)
            for spec in (b, e):
                for v in spec["volumes"]:
                    if "secret" in v:
                        v["secret"]["secretName"] = re.sub(r"-[a-z0-9]{10}$", "", v["secret"]["secretName"])
                spec["volumes"] = sorted(spec["volumes"], key=lambda v: v["name"])
            assert e == b, f"{name}: the {component} pod differs from the base's"


# --- what deploy/README.md tells users -------------------------------------------------------

README = DEPLOY / "README.md"


def test_sidecar_urls_block_resolves_at_purge_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's DJFTPD["SIDECAR_URLS"] block: an iterable that resolves the headless
    Service each time Django's purge code iterates it, ops URLs for every address, none when
    the name does not resolve; and the name is the ops Service of the renderings."""
    import socket

    text = README.read_text()
    block = text.split("<!-- sidecar-urls:start -->", 1)[1].split("<!-- sidecar-urls:end -->", 1)[0]
    code = block.split("```python\n", 1)[1].split("```", 1)[0]
    ns: dict = {"DJFTPD": {}}
    exec(compile(code, "deploy/README.md", "exec"), ns)  # noqa: S102 - our own README
    urls = ns["DJFTPD"]["SIDECAR_URLS"]
    assert urls.service == "djftpd-ops"
    find(render(BASE), "Service", urls.service)
    lookups = []
    real = socket.getaddrinfo

    def fake(host: str, *args: object, **kw: object) -> list:
        lookups.append(host)
        return real("localhost" if host == "djftpd-ops" else host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    first = list(urls)
    assert "http://127.0.0.1:9121/" in first
    assert all(re.fullmatch(r"http://(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):9121/", u) for u in first)
    list(urls)
    assert lookups == ["djftpd-ops", "djftpd-ops"], "looked up at every purge, not once"
    urls.service = "no-such-name.invalid"
    assert list(urls) == []
    # What the djftpd app does with it (receivers.sidecar_urls): iterate, str() each.
    assert [str(u) for u in urls] == []


def test_no_deprecated_load_balancer_ip_advice() -> None:
    """spec.loadBalancerIP is deprecated: every mention in the docs and examples says so
    (or says not to), none recommends it."""
    files = [README, *KUBE.rglob("*.yaml"), *(DEPLOY / "helm").rglob("*.yaml")]
    for f in files:
        for line in f.read_text().splitlines():
            if re.search(r"loadBalancerIP\b", line):
                assert re.search(r"deprecated|[Nn]o `?loadBalancerIP|never|not", line), f"{f.name}: {line}"


def test_pending_storage_is_marked_in_progress() -> None:
    """DJFTPD_STORAGE is used before the sidecar's S3 backend is merged: the README says so,
    until the variable reaches the configuration table (then drop the note)."""
    from deploylib import PENDING_VARS, README_VARS

    text = README.read_text()
    assert PENDING_VARS or "**In progress:**" not in text, "drop the 'In progress' note"
    for var in PENDING_VARS:
        if var in README_VARS:
            pytest.fail(f"{var} is in the README table now: drop it from PENDING_VARS and the 'In progress' note")
        assert "**In progress:**" in text and var in text


def test_readme_sections_named_in_the_files_exist() -> None:
    """Every section of deploy/README.md that a manifest, the chart or a test names is the
    start of a heading there."""
    headings = [
        line.lstrip("#").strip() for line in README.read_text().splitlines() if line.startswith("##")
    ]
    files = [p for p in DEPLOY.rglob("*") if p.is_file() and p.suffix in (".yaml", ".tpl", ".txt", ".env", ".py", "")]
    for f in files:
        for name in re.findall(r'README\.md "([^"]+)"', f.read_text(errors="replace")):
            name = re.sub(r"\s*\n\s*#?\s*", " ", name)  # wrapped in a comment
            assert any(h.startswith(name) for h in headings), f"{f.relative_to(DEPLOY)}: {name!r}"
