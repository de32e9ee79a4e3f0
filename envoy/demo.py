"""The demo: `python3 envoy/demo.py`.

Builds reset-gate, starts Envoy with it on 127.0.0.1:10000 in front of a stand-in auth provider (which
prints every request it receives) and prints curl commands to try. Runs until Ctrl-C.

Options:
  --port N                listener port (default 10000)
  --admin-port N          Envoy admin port (default 9901, or any free port when 9901 is taken)
  --auth0-domain DOMAIN   send resets to a real tenant (e.g. example.eu.auth0.com) over TLS on port 443
                          instead of the stand-in; use with --client-id and --connection from that tenant
  --client-id ID          the client_id the filter uses as default and allows (default: a demo id)
  --connection NAME       the tenant's database connection (default Username-Password-Authentication)
  --no-build              use the wasm already in target/ instead of running cargo
"""

from __future__ import annotations

import argparse
import json
import shlex
import socket
import sys
import tempfile
import time

import tools
from provider import Provider

DEMO_CLIENT_ID = "DemoClientId0000000000000000demo"
LOCK_IOS_AUTH0_CLIENT = "eyJuYW1lIjoiTG9jay5pT1MiLCJ2ZXJzaW9uIjoiMS4yOS4xIn0"


def filter_config(authority: str, client_id: str, connection: str) -> dict:
    """SPEC §8's example configuration, for the demo's tenant."""
    return {
        "paths": [tools.RESET_PATH],
        "provider": {"cluster": tools.PROVIDER_CLUSTER, "authority": authority, "path": tools.RESET_PATH,
                     "timeout_ms": 5000, "client_ip_header": "auth0-forwarded-for"},
        "clients": {"default": client_id, "allowed": [client_id]},
        "connections": {"default": connection, "database": [connection],
                        "identity_providers": {"acme-saml": "Acme single sign-on"}},
        "limits": {"max_body_bytes": 8192,
                   "per_email": {"requests": 5, "window_seconds": 3600},
                   "per_ip": {"requests": 30, "window_seconds": 600},
                   "on_exceed": "reject"},
    }


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def curl(url: str, body: str | dict, content_type: str = "application/json", headers: dict | None = None) -> str:
    if isinstance(body, dict):
        body = json.dumps(body, ensure_ascii=False)
    parts = ["curl", "-i", url, "-H", f"content-type: {content_type}"]
    for key, value in (headers or {}).items():
        parts += ["-H", f"{key}: {value}"]
    parts += ["--data-raw", body]
    return " ".join(shlex.quote(part) for part in parts)


def examples(url: str, client_id: str, connection: str) -> list[tuple[str, str]]:
    return [
        ("A reset from auth0.js (email trimmed, domain lower-cased, connection spelled as configured):",
         curl(url, {"client_id": client_id, "email": " Jane.Doe@Example.COM ", "connection": connection.lower()})),
        ("What Lock iOS v1 sends (scope, device and nonce are dropped; state is kept):",
         curl(url, {"email": "ana.silva@example.com", "client_id": client_id, "connection": connection,
                    "scope": "openid offline_access", "device": "Ana’s iPhone 📱", "state": "af0ifjsldkj",
                    "nonce": "n-0S6_WzA2Mj"},
              headers={"auth0-client": LOCK_IOS_AUTH0_CLIENT,
                       "user-agent": "Lock.iOS/1.29.1 (iPhone; iOS 12.4.1; Scale/3.00)"})),
        ("The legacy auth0.js <= 7 form body (the withdrawn password field is dropped, never logged):",
         curl(url, f"client_id={client_id}&connection={connection}&email=jane.doe%40example.com"
                   "&password=hunter2", content_type="application/x-www-form-urlencoded")),
        ("A social connection: refused with 400 bad.connection, the provider sees nothing:",
         curl(url, {"client_id": client_id, "email": "jane.doe@example.com", "connection": "google-oauth2"})),
        ("A malformed email: refused with 400 invalid_request:",
         curl(url, {"client_id": client_id, "email": "jane.doe.example.com", "connection": connection})),
        ("A browser's CORS preflight, answered by Envoy's CORS filter:",
         " ".join(shlex.quote(p) for p in [
             "curl", "-i", "-X", "OPTIONS", url, "-H", "origin: https://app.example.com",
             "-H", "access-control-request-method: POST",
             "-H", "access-control-request-headers: content-type, auth0-client"])),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description="Run reset-gate in Envoy in front of a stand-in auth provider.")
    parser.add_argument("--port", type=int, default=10000, help="listener port on 127.0.0.1 (default 10000)")
    parser.add_argument("--admin-port", type=int, default=9901, help="admin port (default 9901, else any free)")
    parser.add_argument("--auth0-domain", help="a real tenant, e.g. example.eu.auth0.com (TLS on port 443)")
    parser.add_argument("--client-id", default=None, help="client_id to default to and allow")
    parser.add_argument("--connection", default="Username-Password-Authentication",
                        help="the database connection (default Username-Password-Authentication)")
    parser.add_argument("--no-build", action="store_true", help="use the wasm already built in target/")
    args = parser.parse_args()

    if not port_is_free(args.port):
        print(f"port {args.port} is taken; choose another with --port", file=sys.stderr)
        return 2
    admin_port = args.admin_port if port_is_free(args.admin_port) else 0

    tools.ensure_deps()
    if args.no_build:
        wasm = tools.DIST_WASM
        if not wasm.exists():
            print(f"{wasm} does not exist; run without --no-build", file=sys.stderr)
            return 2
    else:
        print("building the filter (cargo build --release --target wasm32-wasip1)", flush=True)
        wasm = tools.build_wasm()

    client_id = args.client_id or DEMO_CLIENT_ID
    app = Provider(name="app", echo=True).start()
    stand_in = None
    if args.auth0_domain:
        if not args.client_id:
            print("note: a real tenant needs its own client id: pass --client-id", file=sys.stderr)
        authority = args.auth0_domain
        provider_address = f"{args.auth0_domain}:443"
    else:
        stand_in = Provider(name="provider", echo=True).start()
        authority = "example.eu.auth0.com"
        provider_address = stand_in.address

    config = tools.bootstrap(
        provider_address=provider_address,
        provider_tls_sni=args.auth0_domain,
        app_address=app.address,
        filter_config=filter_config(authority, client_id, args.connection),
        wasm_path=wasm,
        listen_port=args.port,
        admin_port=admin_port,
    )
    workdir = tempfile.mkdtemp(prefix="reset-gate-demo-")
    envoy = tools.Envoy(config, workdir, concurrency=2)
    try:
        envoy.start()
    except tools.EnvoyFailedToStart as error:
        print(error, file=sys.stderr)
        app.stop()
        if stand_in:
            stand_in.stop()
        return 1

    url = envoy.url + tools.RESET_PATH
    target = f"the tenant {args.auth0_domain}" if args.auth0_domain else f"the stand-in provider on {stand_in.address}"
    print(f"\nreset-gate is running in Envoy on {envoy.url}, in front of {target}.")
    print(f"Envoy admin: {envoy.admin_url} (stats: {envoy.admin_url}/stats?filter=reset)")
    print(f"Envoy log:   {envoy.log_path}\n")
    print("Try these (each reply comes from the provider or from the filter itself):\n")
    for title, command in examples(url, client_id, args.connection):
        print(f"# {title}\n{command}\n")
    print("What the provider and the app receive is printed below. Ctrl-C stops everything.\n", flush=True)
    try:
        while not envoy.exited():
            time.sleep(0.5)
        print("envoy exited; its log:\n" + envoy.logs()[-3000:], file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopping", flush=True)
        return 0
    finally:
        envoy.stop()
        app.stop()
        if stand_in:
            stand_in.stop()


if __name__ == "__main__":
    sys.exit(main())
