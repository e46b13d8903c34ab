"""Loopback servers for the benchmarks: nginx with a fixed reply, so the server is never the bottleneck.

nginx comes from the distribution (``apt-get install nginx-light``; only the benchmarks need it); without it
they are skipped rather than run against a slow server that would print misleading ratios.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: What WuKongIM's /message/send answers (HTTP 200, the shape verified on a real v2.2.5 server).
WUKONG_SEND_REPLY = {"status": 200, "data": {"message_id": 1851234567890123456, "client_msg_no": "bench"}}

_NGINX_CONF = """
worker_processes 1;
worker_cpu_affinity {affinity};
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 300s;
    client_body_buffer_size 64k;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type application/json;
            return 200 '{reply}';
        }}
    }}
}}
"""


def machine() -> dict[str, object]:
    """What every benchmark's JSON line says of the machine it ran on."""
    return {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()}


def load_average() -> float:
    """The machine's 1-minute load average (what else was running shows in every figure)."""
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def server_version() -> str:
    """Which fixed-reply server the figures are from, e.g. ``nginx/1.22.1``."""
    found = subprocess.run([nginx_binary(), "-v"], capture_output=True, text=True, check=False)
    return (found.stderr or found.stdout).strip().removeprefix("nginx version: ") or "nginx (version unknown)"


def pin_client_and_server() -> str:
    """On a machine with 2+ cores, keep this (client) process on core 0 and leave the last core to the
    server, so the two do not fight over a core: the same for every client measured, and much steadier."""
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cores) < 2:
        return "not pinned (one core)"
    os.sched_setaffinity(0, {cores[0]})
    return f"client on core {cores[0]}, server on core {cores[-1]}"


def _server_affinity() -> str:
    """nginx's worker_cpu_affinity mask for the last core (rightmost digit is core 0)."""
    total = os.cpu_count() or 1
    return "1" + "0" * (total - 1) if total >= 2 else "auto"


def wait_for_port(port: int, process: subprocess.Popen[bytes], *, seconds: float) -> bool:
    """Wait until something accepts connections on 127.0.0.1:``port``; False if ``process`` died or time ran out."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                return False
            time.sleep(0.05)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def nginx_binary() -> str:
    """nginx's path; without nginx the benchmark is skipped (exit status 0), saying how to install it."""
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        print("skipped: nginx is needed for a server that is not the bottleneck (Debian: apt-get install nginx-light)")
        raise SystemExit(0)
    return found


@contextmanager
def fixed_reply_server(reply: dict[str, object] = WUKONG_SEND_REPLY) -> Iterator[str]:
    """Start nginx on 127.0.0.1 answering every request with ``reply``; yield its base URL."""
    binary = nginx_binary()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="imbridge-bench-") as root:
        conf = Path(root, "nginx.conf")
        reply_text = json.dumps(reply, separators=(",", ":"))
        conf.write_text(_NGINX_CONF.format(root=root, port=port, reply=reply_text, affinity=_server_affinity()))
        process = subprocess.Popen([binary, "-p", root, "-c", str(conf), "-g", "daemon off;"])
        try:
            if not wait_for_port(port, process, seconds=10):
                raise SystemExit(f"nginx did not start: {Path(root, 'error.log').read_text()}")
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)
