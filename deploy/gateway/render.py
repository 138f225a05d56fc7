"""Render a runnable variant of the gateway configuration (tests, local runs).

The shared configuration (``nginx.conf``, ``hermes/*.conf``) is copied as it is; only the site
files (``hermes/site/``: upstreams, listen addresses, certificate paths, debug header) are
written for the variant, and the ``/tmp/`` paths of ``nginx.conf`` move under the prefix so
several gateways can run side by side without root::

    python -m deploy.gateway.render --out /tmp/gw --upstream 127.0.0.1:8000 \\
        --http 127.0.0.1:8080 --https 127.0.0.1:8443 --cert cert.pem --key key.pem
    nginx -p /tmp/gw -c /tmp/gw/nginx.conf -g 'daemon off;'
"""

import argparse
import shutil
from collections.abc import Sequence
from pathlib import Path

GATEWAY_DIR = Path(__file__).resolve().parent


def render(
    out: Path,
    *,
    upstreams: Sequence[str],
    http_listen: str,
    https_listen: str,
    certificate: Path,
    certificate_key: Path,
    debug_upstream: bool = True,
) -> Path:
    """Write the variant into ``out`` and return the path of its ``nginx.conf``."""
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(GATEWAY_DIR / "hermes", out / "hermes", dirs_exist_ok=True)
    main = (GATEWAY_DIR / "nginx.conf").read_text()
    (out / "nginx.conf").write_text(main.replace("/tmp/", f"{out}/"))  # noqa: S108 (moved)
    site = out / "hermes" / "site"
    servers = "".join(f"server {u} max_fails=3 fail_timeout=10s;\n" for u in upstreams)
    (site / "upstream.conf").write_text(servers)
    (site / "listen-http.conf").write_text(f"listen {http_listen};\n")
    (site / "listen-https.conf").write_text(f"listen {https_listen} ssl;\n")
    (site / "certificate.conf").write_text(
        f"ssl_certificate {certificate};\nssl_certificate_key {certificate_key};\n"
    )
    value = "$upstream_addr" if debug_upstream else '""'
    (site / "debug.conf").write_text(
        f"map $upstream_addr $hermes_upstream_debug {{\n    default {value};\n}}\n"
    )
    return out / "nginx.conf"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--upstream", action="append", required=True, help="host:port, repeat")
    parser.add_argument("--http", default="127.0.0.1:8080")
    parser.add_argument("--https", default="127.0.0.1:8443")
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--key", type=Path, required=True)
    parser.add_argument("--no-debug-upstream", action="store_true")
    args = parser.parse_args(argv)
    conf = render(
        args.out.resolve(),
        upstreams=args.upstream,
        http_listen=args.http,
        https_listen=args.https,
        certificate=args.cert.resolve(),
        certificate_key=args.key.resolve(),
        debug_upstream=not args.no_debug_upstream,
    )
    print(conf)  # CLI output: where the rendered configuration is


if __name__ == "__main__":
    main()
