"""Speed and size of reset-gate: `python3 bench/run.py [--rounds N] [--seconds S] [--quick] [--diagnose] [--profile]`.

One Envoy 1.40 with one worker (`--concurrency 1`) and two listeners in front of one nginx:

  floor   no reset-gate: the reset POST is routed straight to nginx, GET /other too
  gate    reset-gate: the reset POST is read, normalised and sent to nginx as an HTTP callout;
          GET /other passes through the filter untouched

nginx (worker_processes 1) answers the reset POST like Auth0 (200, `text/html; charset=utf-8`, the
success text) and GET /other with 200: it stands in for both the provider and the app. wrk sends the
load (`-t1 -c16`, the POST body from a Lua script). Envoy is pinned to CPU 0, wrk, nginx and perf to
the other CPUs when `taskset` and two CPUs are there.

The cases run in alternating rounds (the order reversed in every other round), each for `--seconds`;
the table shows the median over rounds of throughput, of wrk's p50/p99 and of Envoy's CPU time per
request, and the ratios against the floor measured in the same run, with the artifact's size. Any
non-2xx reply or socket error aborts the run, and Envoy's counters must show that every gate POST went
through the filter and its callout (and that no other case touched the filter).

`--diagnose` adds cases that tell where a difference comes from: a Rust proxy-wasm filter that does
nothing (bench/noop: the platform's share), the gate POST with the filter's log line dropped by Envoy,
a gate POST refused by the filter after reading it (403, no callout) and reset-gate disabled on the /other route.
`--profile` samples Envoy with perf (cpu-clock, DWARF call stacks) during one extra run of each case
and splits its CPU time per request into kernel, Envoy outside wasm, wasm code, and host calls made by
the wasm code (Envoy's binary is stripped: host calls are told apart by their entry address).

Results go to bench/results/latest.json. Needs nginx and wrk (Debian: `apt-get install nginx-light
wrk`, done here when run as root), and installs Envoy into .deps/ like the tests.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import datetime
import hashlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "envoy"))

import tools  # noqa: E402
from machine import Witness, cpu_seconds  # noqa: E402
from provider import SUCCESS_TEXT  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "latest.json"
NOOP_CRATE = ROOT / "bench" / "noop"
NOOP_TARGET = ROOT / "target" / "bench-noop"
RESET_PATH = tools.RESET_PATH
OTHER_PATH = "/other"
POST_BODY = '{"email":"jane@example.com","connection":"Username-Password-Authentication"}'
CLIENT_ID = "k3Qy8dTfNw2ZrB6xLmP0aVhJcE5sUo9G"  # made up
# No rate limits: every request is a callout.
FILTER_CONFIG = {
    "provider": {"cluster": tools.PROVIDER_CLUSTER, "authority": "tenant.example.auth0.com", "timeout_ms": 5000},
    "clients": {"default": CLIENT_ID, "allowed": [CLIENT_ID]},
}
# Refused by the filter after reading the whole body (403), so without a callout: the difference to a
# gate POST is the callout. (Refusals before the body, 413/415, and every local 400 make Envoy close
# the HTTP/1.1 connection, which would measure reconnections instead.)
REFUSED_BODY = '{"email":"jane@example.com","connection":"Username-Password-Authentication","client_id":"someone-else"}'

TARGETS = {
    "post_throughput_ratio": (">=", 0.95),
    "post_p99_ratio": ("<=", 1.10),
    "get_throughput_ratio": (">=", 0.98),
    "wasm_kib": ("<=", 200.0),
}
STAT_PREFIX = "wasmcustom.reset_gate."
# Other processes using more CPU than this during a round disturb its figures.
DISTURBED = 0.1


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    listener: str
    method: str
    # What reset-gate must do with every request of the case: None (never sees it as a reset
    # request), "callout" (intercepts and calls the provider) or "refused" (answers 403 itself).
    gate: str | None = None
    body: str = POST_BODY
    # Envoy's `wasm` log level during the case (None: as started).
    wasm_log: str | None = None


CASES = (
    Case("floor POST", "floor", "POST"),
    Case("gate POST", "gate", "POST", gate="callout"),
    Case("floor GET", "floor", "GET"),
    Case("gate GET", "gate", "GET"),
)
DIAGNOSE = (
    # What any Rust proxy-wasm filter costs in Envoy's V8: one that does nothing.
    Case("noop POST", "noop", "POST"),
    Case("noop GET", "noop", "GET"),
    # reset-gate's log line per request dropped by Envoy (the filter still formats it).
    Case("gate POST, log off", "gate", "POST", gate="callout", wasm_log="warning"),
    # Read, parsed and refused by the filter (403 unauthorized_client): everything but the callout.
    Case("gate POST, 403 no callout", "gate", "POST", gate="refused", body=REFUSED_BODY),
    # reset-gate left out of the /other route (route-level FilterConfig `disabled: true`).
    Case("gate GET, off on route", "gate_routed", "GET"),
)


# --- tools from Debian -----------------------------------------------------------------------------


def find_binary(name: str) -> str | None:
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None)


def ensure_binaries() -> tuple[str, str]:
    """nginx and wrk, installed from Debian (nginx-light, wrk) when missing and we are root."""
    missing = [name for name in ("nginx", "wrk") if not find_binary(name)]
    if missing:
        packages = ["nginx-light" if name == "nginx" else name for name in missing]
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            sys.exit(f"bench needs {' and '.join(missing)}: install them with "
                     f"`sudo apt-get install {' '.join(packages)}` (Debian/Ubuntu) and run again")
        print(f"installing {', '.join(packages)} with apt-get", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdin=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
                       check=True, env=env, stdin=subprocess.DEVNULL)
    nginx, wrk = find_binary("nginx"), find_binary("wrk")
    if not nginx or not wrk:
        sys.exit("nginx or wrk still missing after apt-get")
    return nginx, wrk


def pinning() -> tuple[list[str], str | None]:
    """(command prefix for wrk, nginx and perf; CPU for Envoy), or ([], None) when not possible."""
    taskset = shutil.which("taskset")
    cpus = sorted(os.sched_getaffinity(0))
    if not taskset or len(cpus) < 2:
        return [], None
    return [taskset, "-c", ",".join(str(c) for c in cpus[1:])], str(cpus[0])


def source_revision() -> str:
    """The commit the filter was built from, with `+changes` when its sources differ from it."""
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        return done.stdout.strip() if done.returncode == 0 else ""
    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--", "src", "build.rs", "Cargo.toml", "Cargo.lock")
    return commit + ("+changes" if changed else "")


def build_noop() -> Path:
    subprocess.run(["cargo", "build", "--release", "--target", tools.WASM_TARGET],
                   cwd=NOOP_CRATE, env=dict(os.environ, CARGO_TARGET_DIR=str(NOOP_TARGET)), check=True,
                   stdin=subprocess.DEVNULL)
    return NOOP_TARGET / tools.WASM_TARGET / "release" / "noop_filter.wasm"


# --- nginx -----------------------------------------------------------------------------------------


NGINX_CONF = """\
daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    # Envoy keeps its upstream connections: never close them in a run.
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    server {{
        listen 127.0.0.1:{port};
        # `return` in a location: a POST to a static file would be 405.
        location = {reset} {{
            default_type "text/html; charset=utf-8";
            return 200 "{success}";
        }}
        location = {other} {{
            default_type "text/plain";
            return 200 "ok";
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""


def start_nginx(nginx: str, workdir: Path, prefix: list[str]) -> tuple[subprocess.Popen, int]:
    port = tools.free_port()
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=workdir, port=port, reset=RESET_PATH, other=OTHER_PATH,
                                      success=SUCCESS_TEXT.decode()))
    error_log = workdir / "nginx-error.log"
    with open(workdir / "nginx.out", "wb") as out:
        process = subprocess.Popen([*prefix, nginx, "-p", str(workdir), "-e", str(error_log), "-c", str(conf)],
                                   stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            details = (workdir / "nginx.out").read_text() + (error_log.read_text() if error_log.exists() else "")
            sys.exit(f"nginx exited: {details}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return process, port
        except OSError:
            time.sleep(0.05)
    process.kill()
    sys.exit("nginx did not listen within 10 s")


# --- Envoy -----------------------------------------------------------------------------------------


def bootstrap(wasm: Path, upstream: str, noop_wasm: Path | None = None) -> dict:
    """Listeners on one Envoy, alike but for their filters; all route the reset path to the provider
    cluster and everything else to the app cluster (both are nginx)."""
    host, port = upstream.rsplit(":", 1)

    def cluster(name: str) -> dict:
        address = {"socket_address": {"address": host, "port_value": int(port)}}
        return {"name": name, "type": "STATIC", "connect_timeout": "1s",
                "load_assignment": {"cluster_name": name,
                                    "endpoints": [{"lb_endpoints": [{"endpoint": {"address": address}}]}]}}

    def listener(name: str, wasm_filter: dict | None, off_on_other_route: bool = False) -> dict:
        router = {"name": "envoy.filters.http.router",
                  "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}
        other = {"match": {"prefix": "/"}, "route": {"cluster": tools.APP_CLUSTER}}
        if off_on_other_route:
            other["typed_per_filter_config"] = {"envoy.filters.http.wasm": {
                "@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig", "disabled": True}}
        routes = [{"match": {"path": RESET_PATH}, "route": {"cluster": tools.PROVIDER_CLUSTER}}, other]
        manager = {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3"
                     ".HttpConnectionManager",
            "stat_prefix": name,
            "codec_type": "AUTO",
            "use_remote_address": True,
            "route_config": {"name": name, "virtual_hosts": [{"name": name, "domains": ["*"], "routes": routes}]},
            "http_filters": ([wasm_filter] if wasm_filter else []) + [router],
        }
        return {"name": name,
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": manager}]}]}

    listeners = [listener("floor", None), listener("gate", tools.wasm_filter(wasm, FILTER_CONFIG))]
    if noop_wasm is not None:
        noop = tools.wasm_filter(noop_wasm, "", vm_id="noop")
        noop["typed_config"]["config"].update(name="noop", root_id="noop")
        listeners += [listener("noop", noop),
                      listener("gate_routed", tools.wasm_filter(wasm, FILTER_CONFIG), off_on_other_route=True)]
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": listeners,
            "clusters": [cluster(tools.PROVIDER_CLUSTER), cluster(tools.APP_CLUSTER)],
        },
    }


def listener_ports(envoy: tools.Envoy) -> dict[str, int]:
    ports = {}
    for status in json.loads(envoy.admin_get("/listeners?format=json"))["listener_statuses"]:
        ports[status["name"]] = int(status["local_address"]["socket_address"]["port_value"])
    return ports


def wasm_counters(envoy: tools.Envoy) -> dict[str, int]:
    return {name[len(STAT_PREFIX):]: value for name, value in envoy.stats().items()
            if name.startswith(STAT_PREFIX) and isinstance(value, int)}


def set_wasm_log(envoy: tools.Envoy, level: str) -> None:
    request = urllib.request.Request(f"{envoy.admin_url}/logging?wasm={level}", data=b"", method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        response.read()


def check_replies(cases: list[Case], ports: dict[str, int]) -> None:
    """One request per case before the load: a gate POST must come back from the filter (which adds
    cache-control: no-store), any other POST straight from nginx."""
    for case in cases:
        path = RESET_PATH if case.method == "POST" else OTHER_PATH
        data = case.body.encode() if case.method == "POST" else None
        headers = {"content-type": "application/json"} if data else {}
        request = urllib.request.Request(f"http://127.0.0.1:{ports[case.listener]}{path}", data=data,
                                         method=case.method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                status, body, cache = response.status, response.read(), response.headers.get("cache-control")
        except urllib.error.HTTPError as error:
            status, body, cache = error.code, error.read(), error.headers.get("cache-control")
        wanted = 403 if case.gate == "refused" else 200
        if status != wanted:
            sys.exit(f"{case.name}: status {status}, expected {wanted}")
        if case.method == "POST":
            if case.gate != "refused" and body != SUCCESS_TEXT:
                sys.exit(f"{case.name}: unexpected body {body!r}")
            if (cache == "no-store") != (case.gate is not None):
                sys.exit(f"{case.name}: cache-control {cache!r}: the request did not take the expected path")


# --- wrk -------------------------------------------------------------------------------------------


WRK_SCRIPT = """\
wrk.method = "{method}"
{body}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH {{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, ' ..
    '"timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def wrk_script(workdir: Path, case: Case, index: int) -> Path:
    body = ""
    if case.method == "POST":
        body = f'wrk.body = {json.dumps(case.body)}\nwrk.headers["Content-Type"] = "application/json"'
    path = workdir / f"case-{index}.lua"
    path.write_text(WRK_SCRIPT.format(method=case.method, body=body))
    return path


def run_wrk(wrk: str, prefix: list[str], script: Path, url: str, seconds: float, threads: int,
            connections: int, refused: bool = False) -> dict:
    command = [*prefix, wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency",
               "--timeout", "5s", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60,
                          stdin=subprocess.DEVNULL)
    line = next((line for line in done.stdout.splitlines() if line.startswith("BENCH ")), None)
    if done.returncode != 0 or line is None:
        sys.exit(f"wrk failed ({done.returncode}): {done.stdout}\n{done.stderr}")
    result = json.loads(line[len("BENCH "):])
    errors = {k: result[k] for k in ("connect", "read", "write", "status", "timeout") if result[k]}
    if refused and errors.get("status") == result["requests"]:
        del errors["status"]  # every reply was the expected refusal
    if errors:
        sys.exit(f"wrk {url}: errors {errors} (status = replies other than 2xx/3xx); aborting\n{done.stdout}")
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


# --- profile ---------------------------------------------------------------------------------------


def perf_usable() -> bool:
    perf = shutil.which("perf")
    return bool(perf) and subprocess.run([perf, "stat", "-e", "task-clock", "true"], capture_output=True,
                                         stdin=subprocess.DEVNULL).returncode == 0


def perf_samples(text: str):
    """The call stacks of `perf script -F comm,tid,ip,sym,dso`: lists of (address, symbol, object)."""
    frames: list | None = None
    for line in text.splitlines():
        if not line.strip():
            if frames:
                yield frames
            frames = None
        elif not line[0].isspace():
            frames = []
        elif frames is not None:
            address, _, rest = line.strip().partition(" ")
            symbol, _, dso = rest.rpartition(" (")
            frames.append((address, symbol, os.path.basename(dso.rstrip(")"))))
    if frames:
        yield frames


WRITE_SYMBOLS = ("__GI___libc_write", "new_do_write", "_IO_new_file_write", "__GI__IO_fwrite")


def classify(text: str) -> dict:
    """Shares of Envoy's samples: kernel and Envoy outside wasm (no V8 JIT frame on the stack), wasm
    code (the sample is in V8's generated code, which perf knows only as perf-PID.map), and host
    calls made by the wasm code (a JIT frame below the sample; unwinding stops there), grouped by the
    host function's entry address and flagged when they write to a file (Envoy's log)."""
    counts: collections.Counter = collections.Counter()
    hosts: collections.Counter = collections.Counter()
    host_writes: collections.Counter = collections.Counter()
    total = 0
    for frames in perf_samples(text):
        total += 1
        jit = [i for i, (_, _, dso) in enumerate(frames) if dso.startswith("perf-")]
        leaf_kernel = "kernel" in frames[0][2]
        if not jit:
            counts["kernel" if leaf_kernel else "envoy"] += 1
        elif jit[0] == 0:
            counts["wasm_code"] += 1
        else:
            counts["host_calls"] += 1
            below = frames[:jit[0]]
            # below[-1] is V8's common wasm-to-host trampoline; below[-2] the host function's entry.
            entry = below[-2][0] if len(below) >= 2 else below[-1][0]
            hosts[entry] += 1
            if any(symbol in WRITE_SYMBOLS for _, symbol, _ in below):
                host_writes[entry] += 1
    share = {key: counts[key] / max(total, 1) for key in ("kernel", "envoy", "wasm_code", "host_calls")}
    groups = [{"entry": f"0x{entry}", "share": n / max(total, 1), "writes_log": host_writes[entry] > n / 5}
              for entry, n in hosts.most_common(6) if n / max(total, 1) >= 0.005]
    return {"samples": total, "share": share, "host_call_groups": groups}


def profile_case(envoy: tools.Envoy, run, prefix: list[str], workdir: Path, case: Case, seconds: float,
                 cpu_us: float) -> dict:
    data = workdir / "perf.data"
    perf = subprocess.Popen([*prefix, "perf", "record", "-q", "-e", "cpu-clock", "-F", "249",
                             "--call-graph", "dwarf,8192", "-o", str(data), "-p", str(envoy.process.pid)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    result = run(case, seconds)
    perf.send_signal(2)
    perf.wait(60)
    script = subprocess.run(["perf", "script", "-i", str(data), "-F", "comm,tid,ip,sym,dso"],
                            capture_output=True, text=True, stdin=subprocess.DEVNULL)
    data.unlink(missing_ok=True)
    profile = classify(script.stdout)
    # Time per request from the unprofiled rounds (sampling slows Envoy down), split by the shares.
    profile["rps_while_sampled"] = round(result["rps"])
    profile["us_per_request"] = {key: round(share * cpu_us, 1) for key, share in profile["share"].items()}
    for group in profile["host_call_groups"]:
        group["us_per_request"] = round(group["share"] * cpu_us, 1)
        group["share"] = round(group["share"], 4)
    profile["share"] = {key: round(value, 4) for key, value in profile["share"].items()}
    return profile


# --- main ------------------------------------------------------------------------------------------


def met(value: float, target: tuple[str, float]) -> bool:
    op, bound = target
    return value >= bound if op == ">=" else value <= bound


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of one case in one round")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 s (about a minute)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--log-level", default="info",
                        help="Envoy's log level (info, Envoy's default, writes reset-gate's line per request)")
    parser.add_argument("--repeats", type=int, default=4,
                        help="how many disturbed rounds (other processes busy) may be run again, in all")
    parser.add_argument("--diagnose", action="store_true", help="add the cases that explain the differences")
    parser.add_argument("--profile", action="store_true", help="perf-sample Envoy in one extra run of each case")
    parser.add_argument("--no-build", action="store_true", help="use dist/reset_gate.wasm as it is")
    parser.add_argument("--wasm", type=Path, help="benchmark this build of the filter instead (e.g. another "
                        "opt-level); its size is the one reported")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.seconds = 2, 5.0
    if (not 1 <= args.rounds <= 50 or not 1 <= args.seconds <= 120 or not 1 <= args.connections <= 1000
            or not 0 <= args.repeats <= 20):
        sys.exit("--rounds must be 1–50, --seconds 1–120, --connections 1–1000 and --repeats 0–20")

    nginx_bin, wrk_bin = ensure_binaries()
    tools.ensure_deps()
    if args.wasm:
        wasm = args.wasm.resolve()
    else:
        wasm = tools.DIST_WASM if args.no_build else tools.build_wasm()
    noop_wasm = build_noop() if args.diagnose else None
    cases = list(CASES) + (list(DIAGNOSE) if args.diagnose else [])
    load_prefix, envoy_cpu = pinning()
    if args.profile and not perf_usable():
        print("perf is not usable here (Debian linux-perf; kernel.perf_event_paranoid): no profile", flush=True)
        args.profile = False
    before_run = Witness()
    time.sleep(1.0)
    busy = before_run.read()["other_cpus"]
    if busy > DISTURBED:
        print(f"warning: other processes use {busy:.2f} CPUs before the run; disturbed rounds will be "
              "run again (--repeats) and the figures may be low and noisy", flush=True)

    workdir = Path(tempfile.mkdtemp(prefix="reset-gate-bench-"))
    # Measure a copy: dist/ may be rebuilt by someone else while the run goes on.
    built, wasm = wasm, workdir / "reset_gate.wasm"
    shutil.copyfile(built, wasm)
    wasm_size, wasm_sha = wasm.stat().st_size, hashlib.sha256(wasm.read_bytes()).hexdigest()[:16]
    raw_size = tools.WASM_PATH.stat().st_size if tools.WASM_PATH.exists() and not args.wasm else None
    revision = source_revision()
    nginx_process = envoy = None
    samples: dict[str, list[dict]] = {case.name: [] for case in cases}
    profiles: dict[str, dict] = {}
    try:
        nginx_process, nginx_port = start_nginx(nginx_bin, workdir, load_prefix)
        envoy = tools.Envoy(bootstrap(wasm, f"127.0.0.1:{nginx_port}", noop_wasm), workdir / "envoy",
                            concurrency=1, log_level=args.log_level).start()
        if envoy_cpu is not None:
            subprocess.run(["taskset", "-a", "-p", "-c", envoy_cpu, str(envoy.process.pid)], check=True,
                           stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        ports = listener_ports(envoy)
        check_replies(cases, ports)
        scripts = {case.name: wrk_script(workdir, case, index) for index, case in enumerate(cases)}

        def run(case: Case, seconds: float) -> dict:
            if case.wasm_log:
                set_wasm_log(envoy, case.wasm_log)
            try:
                before, cpu_before = wasm_counters(envoy), cpu_seconds(envoy.process.pid)
                witness = Witness(envoy.process.pid, nginx_process.pid)
                path = RESET_PATH if case.method == "POST" else OTHER_PATH
                result = run_wrk(wrk_bin, load_prefix, scripts[case.name],
                                 f"http://127.0.0.1:{ports[case.listener]}{path}", seconds, args.threads,
                                 args.connections, refused=case.gate == "refused")
                cpu = cpu_seconds(envoy.process.pid) - cpu_before
                result.update(witness.read())
                after = wasm_counters(envoy)
            finally:
                if case.wasm_log:
                    set_wasm_log(envoy, args.log_level)
            moved = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            # wrk does not count the replies still in flight when it stops: up to one per connection.
            n = result["requests"]
            expected = {"intercepted": n if case.gate else 0,
                        "forwarded": n if case.gate == "callout" else 0,
                        "provider.2xx": n if case.gate == "callout" else 0,
                        "rejected.client": n if case.gate == "refused" else 0}
            for counter, low in expected.items():
                if not low <= moved.get(counter, 0) <= low + (args.connections if low else 0):
                    sys.exit(f"{case.name}: counter {counter} moved by {moved.get(counter, 0)} for {n} requests: "
                             f"the requests did not take the expected path")
            result["envoy_cpu_us_per_request"] = cpu * 1e6 / max(n, 1)
            result["envoy_cpu_share"] = cpu / (result["duration_us"] / 1e6)
            return result

        warm = min(2.0, args.seconds)
        print(f"warm-up ({warm:g} s per case)", flush=True)
        for case in cases:
            run(case, warm)

        round_index, repeats = 0, 0
        while round_index < args.rounds:
            order = cases if round_index % 2 == 0 else cases[::-1]
            results = {}
            for case in order:
                result = results[case.name] = run(case, args.seconds)
                print(f"round {round_index + 1}/{args.rounds}  {case.name:<27}{result['rps']:8.0f} req/s  "
                      f"p50 {result['p50_us'] / 1000:6.2f} ms  p99 {result['p99_us'] / 1000:6.2f} ms  "
                      f"Envoy {result['envoy_cpu_us_per_request']:6.1f} µs/req "
                      f"({result['envoy_cpu_share'] * 100:3.0f}% of a CPU, others {result['other_cpus']:.2f})",
                      flush=True)
            others = max(result["other_cpus"] for result in results.values())
            if others > DISTURBED and repeats < args.repeats:
                repeats += 1
                print(f"round {round_index + 1} disturbed (other processes used {others:.2f} CPUs): "
                      f"repeating it ({repeats}/{args.repeats})", flush=True)
                continue
            for name, result in results.items():
                samples[name].append(result)
            round_index += 1

        if args.profile:
            for case in cases:
                print(f"profiling {case.name}", flush=True)
                cpu_us = statistics.median(s["envoy_cpu_us_per_request"] for s in samples[case.name])
                profiles[case.name] = profile_case(envoy, run, load_prefix, workdir, case,
                                                   min(args.seconds, 8.0), cpu_us)
        log_lines = sum(1 for line in envoy.logs().splitlines() if "reset-gate: outcome=" in line)
    finally:
        if envoy is not None:
            envoy.stop()
        if nginx_process is not None:
            nginx_process.terminate()
            try:
                nginx_process.wait(10)
            except subprocess.TimeoutExpired:
                nginx_process.kill()
        shutil.rmtree(workdir, ignore_errors=True)

    def median(name: str, key: str) -> float:
        return statistics.median(sample[key] for sample in samples[name])

    summary = {case.name: {"rps": round(median(case.name, "rps")),
                           "p50_ms": round(median(case.name, "p50_us") / 1000, 3),
                           "p99_ms": round(median(case.name, "p99_us") / 1000, 3),
                           "envoy_cpu_us_per_request": round(median(case.name, "envoy_cpu_us_per_request"), 1),
                           "envoy_cpu_share": round(median(case.name, "envoy_cpu_share"), 3),
                           "other_cpus_max": max(s["other_cpus"] for s in samples[case.name]),
                           "steal_cpus_max": max(s["steal_cpus"] for s in samples[case.name]),
                           "rps_per_round": [round(s["rps"]) for s in samples[case.name]],
                           "p99_ms_per_round": [round(s["p99_us"] / 1000, 3) for s in samples[case.name]]}
               for case in cases}
    ratios = {
        "post_throughput_ratio": summary["gate POST"]["rps"] / summary["floor POST"]["rps"],
        "post_p99_ratio": summary["gate POST"]["p99_ms"] / summary["floor POST"]["p99_ms"],
        "get_throughput_ratio": summary["gate GET"]["rps"] / summary["floor GET"]["rps"],
        "wasm_kib": wasm_size / 1024,
    }

    def paired(case: str, floor: str, key: str = "rps") -> float:
        """The median over rounds of the ratio within each round (the cases of a pair run back to
        back), which a machine whose speed drifts between rounds disturbs less."""
        return statistics.median(a[key] / b[key] for a, b in zip(samples[case], samples[floor]))

    paired_ratios = {
        "post_throughput_ratio": paired("gate POST", "floor POST"),
        "post_p99_ratio": paired("gate POST", "floor POST", "p99_us"),
        "get_throughput_ratio": paired("gate GET", "floor GET"),
    }
    disturbed = {name: s["other_cpus_max"] for name, s in summary.items() if s["other_cpus_max"] > DISTURBED}

    print()
    print(f"{'case':<27}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'Envoy µs/req':>14}{'Envoy CPU':>11}"
          f"{'others':>8}")
    for case in cases:
        s = summary[case.name]
        print(f"{case.name:<27}{s['rps']:>8}{s['p50_ms']:>9.2f}{s['p99_ms']:>9.2f}"
              f"{s['envoy_cpu_us_per_request']:>14.1f}{s['envoy_cpu_share']:>10.0%}{s['other_cpus_max']:>8.2f}")
    print("(medians over rounds; others: the most CPUs other processes used in any round of the case)")
    print()
    labels = {
        "post_throughput_ratio": "gate POST / floor POST throughput",
        "post_p99_ratio": "gate POST / floor POST p99",
        "get_throughput_ratio": "gate GET / floor GET throughput",
        "wasm_kib": f"{args.wasm.name if args.wasm else 'dist/reset_gate.wasm'} (KiB)",
    }
    for key, value in ratios.items():
        op, bound = TARGETS[key]
        extra = f"   (paired by round: {paired_ratios[key]:.3f})" if key in paired_ratios else ""
        print(f"{labels[key]:<36}{value:>8.3f}   target {op} {bound:g}   "
              f"{'met' if met(value, TARGETS[key]) else 'MISSED'}{extra}")
    if raw_size is not None:
        print(f"{'cargo output (KiB)':<36}{raw_size / 1024:>8.1f}")
    if profiles:
        print("\nEnvoy's CPU per request by where it goes (µs; perf cpu-clock samples × the rounds' µs/req)")
        print(f"{'case':<27}{'total':>7}{'kernel':>8}{'Envoy':>7}{'wasm':>7}{'host calls':>12}  "
              "largest host calls by entry address")
        for name, p in profiles.items():
            us = p["us_per_request"]
            groups = ", ".join(f"{g['entry']}{' (log)' if g['writes_log'] else ''} {g['us_per_request']}"
                               for g in p["host_call_groups"][:4])
            print(f"{name:<27}{summary[name]['envoy_cpu_us_per_request']:>7.1f}{us['kernel']:>8.1f}"
                  f"{us['envoy']:>7.1f}{us['wasm_code']:>7.1f}{us['host_calls']:>12.1f}  {groups}")

    results = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(["python3", "bench/run.py", *sys.argv[1:]]),
        "setup": {"wasm": args.wasm.name if args.wasm else "dist/reset_gate.wasm", "source": revision,
                  "wasm_sha256": wasm_sha, "repeated_rounds": repeats,
                  "rounds": args.rounds, "seconds": args.seconds, "wrk": f"-t{args.threads} -c{args.connections}",
                  "envoy": "1.40, --concurrency 1", "envoy_log_level": args.log_level,
                  "pinned": envoy_cpu is not None, "cpus": os.cpu_count(), "machine": platform.machine(),
                  "other_cpus_before_run": round(busy, 2), "reset_gate_log_lines": log_lines},
        "cases": summary,
        "ratios": {k: round(v, 3) for k, v in ratios.items()},
        "paired_ratios": {k: round(v, 3) for k, v in paired_ratios.items()},
        "disturbed_cases": disturbed,
        "targets": {k: {"target": f"{op} {bound:g}", "met": met(ratios[k], (op, bound))}
                    for k, (op, bound) in TARGETS.items()},
        "size_bytes": {"dist": wasm_size, "cargo": raw_size},
        "profile": profiles or None,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    try:
        shown = args.output.resolve().relative_to(ROOT)
    except ValueError:
        shown = args.output
    if disturbed:
        print(f"\nwarning: other processes used up to {max(disturbed.values()):.2f} CPUs during {sorted(disturbed)}: "
              "the figures are disturbed; run again on a quiet machine")
    print(f"\nresults: {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
