"""Checks the ready-made gateway configurations under envoy/ against Envoy 1.40 and the filter itself.

    python3 tests/check_configs.py

1. Every plain Envoy configuration (a bootstrap, or envoy/snippet.yaml wrapped into one) passes
   `envoy --mode validate`. Validation loads the .wasm and runs the filter's `on_configure`, so a
   configuration the filter refuses fails here too (one check below proves that it does).
2. Every Kubernetes manifest (envoy/istio, envoy/envoy-gateway) carries what the filter needs, and
   the Wasm configuration each gateway would hand Envoy is rebuilt from the manifests and validated by
   Envoy like the plain configurations (with the local build in place of the remote module).
3. Every embedded filter configuration passes `reset-gate-check`, the filter's own parser.

Prints one line per check and `N passed, N failed`; exits 1 when a check failed. Installs its tools
into .deps/ like the end-to-end tests (Envoy through envoy/tools.py, PyYAML here).
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENVOY_DIR = ROOT / "envoy"
PYTHON_DEPS = ROOT / ".deps" / "python"
PYYAML = "pyyaml==6.0.4"

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
STRING_VALUE_TYPE = "type.googleapis.com/google.protobuf.StringValue"
SHA256 = re.compile(r"^[0-9a-f]{64}$")

sys.path.insert(0, str(ENVOY_DIR))
import tools  # noqa: E402  (envoy/tools.py: the pinned Envoy and the wasm build)


def ensure_pyyaml() -> None:
    """Install the pinned PyYAML into .deps/python (once), the way envoy/tools.py installs its tools."""
    dist = f"pyyaml-{PYYAML.split('==')[1]}.dist-info"
    if not any(p.name.lower() == dist for p in PYTHON_DEPS.glob("*.dist-info")):
        PYTHON_DEPS.mkdir(parents=True, exist_ok=True)
        print(f"installing {PYYAML} into .deps/python", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-input", "--target", str(PYTHON_DEPS), PYYAML],
            check=True,
            stdin=subprocess.DEVNULL,
        )
    if str(PYTHON_DEPS) not in sys.path:
        sys.path.insert(0, str(PYTHON_DEPS))


class Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed = 0

    def record(self, name: str, problem: str | None, note: str = "") -> bool:
        if problem is None:
            self.passed += 1
            print(f"ok    {name}{f' ({note})' if note else ''}", flush=True)
        else:
            self.failed += 1
            print(f"FAIL  {name}: {problem}", flush=True)
        return problem is None

    def expect(self, name: str, condition: bool, problem: str) -> bool:
        return self.record(name, None if condition else problem)


def rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def get(obj, *keys, default=None):
    """obj[k1][k2]... or `default` when any step is missing."""
    for key in keys:
        if isinstance(obj, dict) and key in obj:
            obj = obj[key]
        elif isinstance(obj, list) and isinstance(key, int) and -len(obj) <= key < len(obj):
            obj = obj[key]
        else:
            return default
    return obj


# --- Envoy ----------------------------------------------------------------------------------------


def envoy_validate(config_path: Path) -> tuple[bool, str]:
    """`envoy --mode validate` from the repository root (configs name the .wasm relative to it)."""
    result = subprocess.run(
        [str(tools.envoy_binary()), "--mode", "validate", "-c", str(config_path), "-l", "info",
         "--disable-hot-restart"],
        cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120,
    )
    return result.returncode == 0, result.stdout + result.stderr


def validation_problem(ok: bool, output: str, expect_filter: bool = True) -> str | None:
    if not ok:
        lines = [line for line in output.splitlines() if "critical" in line or "error" in line]
        return (lines[-1] if lines else output.strip()[-400:]).strip()
    if expect_filter and "reset-gate: configured for" not in output:
        return "Envoy accepted it, but the filter never logged its configuration (was the .wasm loaded?)"
    return None


def wasm_filters(node) -> list[dict]:
    """Every HTTP filter entry with reset-gate's Wasm typed_config, anywhere in a document."""
    found = []
    if isinstance(node, dict):
        if get(node, "typed_config", "@type") == WASM_TYPE:
            found.append(node)
        for value in node.values():
            found.extend(wasm_filters(value))
    elif isinstance(node, list):
        for value in node:
            found.extend(wasm_filters(value))
    return found


def find_key(node, key):
    """Every value stored under `key`, anywhere in a document."""
    if isinstance(node, dict):
        for k, value in node.items():
            if k == key:
                yield value
            yield from find_key(value, key)
    elif isinstance(node, list):
        for value in node:
            yield from find_key(value, key)


def plugin_configuration(plugin_config: dict) -> str | None:
    configuration = plugin_config.get("configuration") or {}
    if configuration.get("@type") != STRING_VALUE_TYPE:
        return None
    return configuration.get("value")


def minimal_bootstrap(http_filters: list, routes: list, clusters: list) -> dict:
    """A listener around the given pieces, just enough for Envoy to validate them."""
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [{
                "name": "check",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 10000}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network."
                                 "http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "check",
                        "route_config": {"virtual_hosts": [
                            {"name": "check", "domains": ["*"], "routes": routes}]},
                        "http_filters": http_filters + [{
                            "name": "envoy.filters.http.router",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
                        }],
                    },
                }]}],
            }],
            "clusters": clusters,
        },
    }


def placeholder_cluster(name: str) -> dict:
    return {
        "name": name, "type": "STATIC", "connect_timeout": "1s",
        "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
            {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 9}}}}]}]},
    }


def local_code(plugin_config: dict) -> dict:
    """The PluginConfig with the local build as its code (what the gateway agents hand Envoy)."""
    plugin_config = copy.deepcopy(plugin_config)
    plugin_config.setdefault("vm_config", {})["code"] = {"local": {"filename": str(tools.DIST_WASM)}}
    return plugin_config


def validate_plugin_config(checks: Checks, name: str, filter_name: str, plugin_config: dict,
                           workdir: Path) -> None:
    """Validate one PluginConfig with Envoy, inside a minimal bootstrap that has its provider cluster."""
    configuration = plugin_configuration(plugin_config)
    try:
        cluster = json.loads(configuration)["provider"]["cluster"]
    except (TypeError, ValueError, KeyError):
        cluster = "provider"
    wasm = {"name": filter_name, "typed_config": {"@type": WASM_TYPE, "config": local_code(plugin_config)}}
    routes = [{"match": {"prefix": "/"}, "route": {"cluster": cluster}}]
    path = workdir / (re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-") + ".json")
    path.write_text(json.dumps(minimal_bootstrap([wasm], routes, [placeholder_cluster(cluster)]), indent=2))
    ok, output = envoy_validate(path)
    checks.record(name, validation_problem(ok, output), "filter loaded and configured")


def check_plugin_fields(checks: Checks, where: str, plugin_config: dict) -> None:
    checks.expect(f"{where}: allow_on_headers_stop_iteration is true",
                  plugin_config.get("allow_on_headers_stop_iteration") is True,
                  f"got {plugin_config.get('allow_on_headers_stop_iteration')!r}")
    checks.expect(f"{where}: failure_policy is FAIL_CLOSED",
                  plugin_config.get("failure_policy") == "FAIL_CLOSED" and not plugin_config.get("fail_open"),
                  f"got failure_policy={plugin_config.get('failure_policy')!r}, "
                  f"fail_open={plugin_config.get('fail_open')!r}")


# --- 1. plain Envoy configurations ----------------------------------------------------------------


def wrap_snippet(snippet: dict) -> dict:
    """envoy/snippet.yaml's pieces in a minimal bootstrap: its route first, then a catch-all that gets
    the per-route configuration the snippet recommends for other routes."""
    catch_all = {"match": {"prefix": "/"}, "direct_response": {"status": 404}}
    if snippet.get("other_routes_typed_per_filter_config"):
        catch_all["typed_per_filter_config"] = snippet["other_routes_typed_per_filter_config"]
    return minimal_bootstrap(list(snippet["http_filters"]), list(snippet["routes"]) + [catch_all],
                             list(snippet["clusters"]))


def check_plain_envoy(checks: Checks, yaml, workdir: Path, embedded: list) -> None:
    for path in sorted(ENVOY_DIR.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if not isinstance(doc, dict):
            continue
        if "static_resources" in doc:
            ok, output = envoy_validate(path)
            checks.record(f"envoy validate {rel(path)}", validation_problem(ok, output),
                          "filter loaded and configured")
        elif "http_filters" in doc:
            wrapped = workdir / f"{path.stem}.wrapped.json"
            wrapped.write_text(json.dumps(wrap_snippet(doc), indent=2))
            ok, output = envoy_validate(wrapped)
            checks.record(f"envoy validate {rel(path)} (wrapped into a minimal bootstrap)",
                          validation_problem(ok, output), "filter loaded and configured")
        else:
            continue
        filters = wasm_filters(doc)
        checks.expect(f"{rel(path)}: has the reset-gate wasm filter", bool(filters), "no Wasm filter found")
        for wasm in filters:
            config = wasm["typed_config"]["config"]
            check_plugin_fields(checks, rel(path), config)
            embedded.append((rel(path), plugin_configuration(config)))
            names = [f.get("name") for f in next(find_key(doc, "http_filters"), [])]
            checks.expect(f"{rel(path)}: CORS comes before reset-gate",
                          "envoy.filters.http.cors" in names
                          and names.index("envoy.filters.http.cors") < names.index(wasm.get("name")),
                          f"http_filters order is {names}")


def check_validation_catches_bad_filter_config(checks: Checks, yaml, workdir: Path) -> None:
    """The premise of the checks above: Envoy's validation runs the filter's on_configure."""
    source = ENVOY_DIR / "reset-gate.yaml"
    doc = yaml.safe_load(source.read_text())
    config = wasm_filters(doc)[0]["typed_config"]["config"]
    settings = json.loads(plugin_configuration(config))
    settings["provider"]["timeout"] = 5000  # a typo of timeout_ms
    config["configuration"]["value"] = json.dumps(settings)
    broken = workdir / "bad-filter-config.json"
    broken.write_text(json.dumps(doc))
    ok, output = envoy_validate(broken)
    checks.expect("envoy validate refuses a configuration the filter refuses",
                  not ok and "provider.timeout" in output,
                  "Envoy accepted a filter configuration with an unknown key" if ok
                  else "refused, but the log does not name the bad key")


# --- 2. Kubernetes manifests ----------------------------------------------------------------------


def load_manifests(yaml) -> list[tuple[str, dict]]:
    manifests = []
    for path in sorted([*ENVOY_DIR.glob("*/*.yaml"), *ENVOY_DIR.glob("*/*/*.yaml")]):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and "kind" in doc:
                manifests.append((rel(path), doc))
    return manifests


def pinned(digest) -> bool:
    return isinstance(digest, str) and bool(SHA256.match(digest))


def route_targets(spec: dict, namespace: str) -> list[tuple[str, str]]:
    """The (namespace, name) of every HTTPRoute a policy targets."""
    return [(namespace, t.get("name")) for t in spec.get("targetRefs") or [] if t.get("kind") == "HTTPRoute"]


def named(doc: dict) -> str:
    return f"{doc['kind']} {get(doc, 'metadata', 'namespace', default='')}/{get(doc, 'metadata', 'name')}"


def check_provider_settings(checks: Checks, where: str, settings, clusters: set[str]) -> None:
    ok = get(settings, "provider", "cluster") and get(settings, "provider", "authority")
    if checks.expect(f"{where}: configuration has provider.cluster and provider.authority", bool(ok),
                     f"got provider={get(settings, 'provider')!r}"):
        cluster = settings["provider"]["cluster"]
        checks.expect(f"{where}: provider.cluster `{cluster}` is a cluster the other manifests create",
                      cluster in clusters, f"known clusters: {sorted(clusters)}")


def check_istio(checks: Checks, manifests, workdir: Path, embedded: list) -> None:
    clusters = set()
    for _, doc in manifests:
        if doc["kind"] == "ServiceEntry":
            for host in get(doc, "spec", "hosts", default=[]):
                for port in get(doc, "spec", "ports", default=[]):
                    clusters.add(f"outbound|{port['number']}||{host}")

    for where, doc in manifests:
        kind, spec = doc["kind"], doc.get("spec") or {}
        label = f"{where}: {named(doc)}"
        if kind == "WasmPlugin":
            checks.expect(f"{label}: sha256 pins the module", pinned(spec.get("sha256")),
                          f"got {spec.get('sha256')!r}")
            checks.expect(f"{label}: url is oci:// or https://",
                          str(spec.get("url", "")).startswith(("oci://", "https://")),
                          f"got {spec.get('url')!r}")
            checks.expect(f"{label}: failStrategy is FAIL_CLOSE", spec.get("failStrategy") == "FAIL_CLOSE",
                          f"got {spec.get('failStrategy')!r}")
            check_provider_settings(checks, label, spec.get("pluginConfig"), clusters)
            embedded.append((label, json.dumps(spec.get("pluginConfig"))))
        elif kind == "EnvoyFilter":
            patches = spec.get("configPatches") or []
            extensions = [p for p in patches if p.get("applyTo") == "EXTENSION_CONFIG"
                          and get(p, "patch", "operation") == "ADD"
                          and get(p, "patch", "value", "typed_config", "@type") == WASM_TYPE]
            if not checks.expect(f"{label}: adds reset-gate's Wasm extension config (EXTENSION_CONFIG ADD)",
                                 len(extensions) == 1, f"found {len(extensions)}"):
                continue
            value = extensions[0]["patch"]["value"]
            plugin = value["typed_config"]["config"]
            check_plugin_fields(checks, label, plugin)
            remote = get(plugin, "vm_config", "code", "remote", default={})
            checks.expect(f"{label}: remote code is pinned by sha256", pinned(remote.get("sha256")),
                          f"got {remote.get('sha256')!r}")
            inserts = [p for p in patches if p.get("applyTo") == "HTTP_FILTER"
                       and get(p, "patch", "value", "name") == value["name"]]
            insert = inserts[0] if inserts else {}
            checks.expect(f"{label}: an HTTP_FILTER patch puts `{value['name']}` into the gateway's "
                          "listeners before the router (after CORS)",
                          len(inserts) == 1
                          and get(insert, "match", "context") == "GATEWAY"
                          and get(insert, "patch", "operation") == "INSERT_BEFORE"
                          and get(insert, "match", "listener", "filterChain", "filter", "subFilter", "name")
                          == "envoy.filters.http.router"
                          and WASM_TYPE in (get(insert, "patch", "value", "config_discovery", "type_urls")
                                            or []),
                          f"got {inserts!r}")
            configuration = plugin_configuration(plugin)
            try:
                settings = json.loads(configuration)
            except (TypeError, ValueError):
                settings = None
            check_provider_settings(checks, label, settings, clusters)
            embedded.append((label, configuration))
            validate_plugin_config(checks, f"envoy validate {label}: its Wasm extension config",
                                   value["name"], plugin, workdir)
        elif kind == "DestinationRule":
            settings = get(spec, "trafficPolicy", "portLevelSettings", default=[]) or []
            tls = [s.get("tls") or {} for s in settings]
            checks.expect(f"{label}: originates TLS to the provider with SNI",
                          any(t.get("mode") == "SIMPLE" and t.get("sni") == spec.get("host") for t in tls),
                          f"got {tls!r}")
        elif kind == "VirtualService":
            routes = [(m, r) for r in spec.get("http") or [] for m in r.get("match") or []]
            reset = [r for m, r in routes if get(m, "uri", "exact") == tools.RESET_PATH]
            ok = reset and reset[0].get("corsPolicy") and get(reset[0], "route", 0, "destination", "host")
            if checks.expect(f"{label}: the reset path routes to a cluster, with a CORS policy", bool(ok),
                             f"got {reset!r}"):
                destination = reset[0]["route"][0]["destination"]
                cluster = f"outbound|{get(destination, 'port', 'number')}||{destination['host']}"
                checks.expect(f"{label}: the reset route's destination `{cluster}` is a ServiceEntry's",
                              cluster in clusters, f"known clusters: {sorted(clusters)}")


def check_envoy_gateway(checks: Checks, manifests, workdir: Path, embedded: list) -> None:
    routes = {}
    clusters = set()
    for _, doc in manifests:
        if doc["kind"] == "HTTPRoute":
            namespace, name = doc["metadata"].get("namespace", "default"), doc["metadata"]["name"]
            routes[(namespace, name)] = doc
            for index, _ in enumerate(get(doc, "spec", "rules", default=[])):
                clusters.add(f"httproute/{namespace}/{name}/rule/{index}")
    patch_policies = [(w, d) for w, d in manifests if d["kind"] == "EnvoyPatchPolicy"]

    for where, doc in manifests:
        kind, spec = doc["kind"], doc.get("spec") or {}
        label = f"{where}: {named(doc)}"
        namespace = doc["metadata"].get("namespace", "default")
        if kind == "HTTPRoute":
            rules = get(spec, "rules", default=[]) or []
            reset = [r for r in rules for m in r.get("matches") or []
                     if get(m, "path", "type") == "Exact" and get(m, "path", "value") == tools.RESET_PATH]
            checks.expect(f"{label}: the reset path (Exact) routes to a backend",
                          bool(reset) and bool(reset[0].get("backendRefs")), f"got {rules!r}")
        elif kind == "Backend":
            tls = spec.get("tls") or {}
            checks.expect(f"{label}: TLS with the system CAs and SNI",
                          tls.get("wellKnownCACertificates") == "System" and bool(tls.get("sni")),
                          f"got {tls!r}")
        elif kind == "SecurityPolicy":
            targets = route_targets(spec, namespace)
            checks.expect(f"{label}: CORS for the reset HTTPRoute",
                          bool(get(spec, "cors", "allowOrigins")) and bool(targets)
                          and all(t in routes for t in targets),
                          f"got targets {targets!r}, cors {spec.get('cors')!r}")
        elif kind == "EnvoyExtensionPolicy":
            targets = route_targets(spec, namespace)
            checks.expect(f"{label}: targets an HTTPRoute defined alongside",
                          bool(targets) and all(t in routes for t in targets), f"got {targets!r}")
            entries = spec.get("wasm") or []
            if not checks.expect(f"{label}: has a wasm entry with a config",
                                 bool(entries) and bool(entries[0].get("config")), f"got {entries!r}"):
                continue
            for index, wasm in enumerate(entries):
                entry = f"{label} wasm[{index}]"
                checks.expect(f"{entry}: failOpen is false", wasm.get("failOpen") is False,
                              f"got {wasm.get('failOpen')!r}")
                code = wasm.get("code") or {}
                source = code.get("image") if code.get("type") == "Image" else code.get("http")
                checks.expect(f"{entry}: code is pinned by sha256", pinned(get(source, "sha256")),
                              f"got {source!r}")
                check_provider_settings(checks, entry, wasm.get("config"), clusters)
                embedded.append((entry, json.dumps(wasm.get("config"))))
                check_patched_wasm(checks, entry, namespace, doc["metadata"]["name"], index, wasm,
                                   patch_policies, workdir)
        elif kind == "EnvoyPatchPolicy":
            checks.expect(f"{label}: type JSONPatch", spec.get("type") == "JSONPatch",
                          f"got {spec.get('type')!r}")


def check_patched_wasm(checks: Checks, entry: str, namespace: str, policy: str, index: int, wasm: dict,
                       patch_policies, workdir: Path) -> None:
    """Find the EnvoyPatchPolicy operations aimed at this Wasm entry's filter, apply them to the
    PluginConfig Envoy Gateway generates for it (internal/xds/translator/wasm.go) and validate that."""
    filter_name = f"envoy.filters.http.wasm/envoyextensionpolicy/{namespace}/{policy}/wasm/{index}"
    plugin = {
        "name": wasm.get("name") or f"envoyextensionpolicy/{namespace}/{policy}/wasm/{index}",
        "root_id": wasm.get("rootID", ""),
        "vm_config": {"vm_id": f"envoyextensionpolicy/{namespace}/{policy}/wasm/{index}",
                      "runtime": "envoy.wasm.runtime.v8"},
        "configuration": {"@type": STRING_VALUE_TYPE, "value": json.dumps(wasm.get("config"))},
    }
    if wasm.get("failOpen"):
        plugin["fail_open"] = True
    applied = []
    for where, doc in patch_policies:
        for patch in get(doc, "spec", "jsonPatches", default=[]) or []:
            operation = patch.get("operation") or {}
            json_path = operation.get("jsonPath") or ""
            if (patch.get("type") == "type.googleapis.com/envoy.config.listener.v3.Listener"
                    and f"@.name=='{filter_name}'" in json_path
                    and json_path.endswith(".typed_config.config")
                    and operation.get("op") == "add" and operation.get("path")):
                plugin[operation["path"].strip("/")] = operation.get("value")
                applied.append(f"{where}: {patch.get('name')} {operation['path']}")
    checks.expect(f"{entry}: an EnvoyPatchPolicy adds allow_on_headers_stop_iteration: true to "
                  f"`{filter_name}`", plugin.get("allow_on_headers_stop_iteration") is True,
                  f"patches aimed at it: {applied or 'none'}")
    check_plugin_fields(checks, f"{entry} as patched", plugin)
    validate_plugin_config(checks, f"envoy validate {entry} as Envoy Gateway generates and the patch "
                           "changes it", filter_name, plugin, workdir)


# --- 3. the filter's own parser -------------------------------------------------------------------


def check_embedded(checks: Checks, embedded: list) -> None:
    for where, configuration in embedded:
        name = f"reset-gate-check: the filter configuration in {where}"
        if configuration is None:
            checks.record(name, "no configuration (a StringValue with the JSON) found")
            continue
        result = subprocess.run(
            ["cargo", "run", "--quiet", "--bin", "reset-gate-check", "--", "-"],
            cwd=ROOT, input=configuration, capture_output=True, text=True, timeout=600,
        )
        checks.record(name, None if result.returncode == 0 else
                      f"exit {result.returncode}: {(result.stderr or result.stdout).strip()}")


def main() -> int:
    tools.ensure_deps(quiet=True)
    ensure_pyyaml()
    import yaml  # noqa: E402  (from .deps/python)

    tools.build_wasm()
    checks = Checks()
    embedded: list[tuple[str, str | None]] = []
    with tempfile.TemporaryDirectory(prefix="check-configs-") as tmp:
        workdir = Path(tmp)
        check_plain_envoy(checks, yaml, workdir, embedded)
        check_validation_catches_bad_filter_config(checks, yaml, workdir)
        manifests = load_manifests(yaml)
        checks.expect("Kubernetes manifests found under envoy/*/", bool(manifests), "none")
        check_istio(checks, [m for m in manifests if m[0].startswith("envoy/istio/")], workdir, embedded)
        check_envoy_gateway(checks, [m for m in manifests if m[0].startswith("envoy/envoy-gateway/")],
                            workdir, embedded)
    check_embedded(checks, embedded)
    print(f"{checks.passed} passed, {checks.failed} failed")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
