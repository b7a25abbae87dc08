"""`facefaas serve` in a process of its own, for tests that need the real command: its uvicorn
configuration, its worker processes, its memory measured apart from the test's."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

MiB = 1024 * 1024
# prlimit --as, per process: onnxruntime reserves far more address space than it uses.
ADDRESS_SPACE = 6 * 1024 * MiB


class Served:
    """A ``facefaas serve`` process and its address."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def rss(self) -> int:
        """The server's resident memory, bytes."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_serve(data_dir: Path, env: dict[str, str], *args: str) -> Served:
    """``facefaas serve ARGS`` on a free port with ``env`` added, once ``/readyz`` answers 200.

    Its address space is capped (``prlimit --as``) so a bug cannot take the machine's memory.
    """
    port = free_port()
    environ = {
        **os.environ,
        "FACEFAAS_DATA_DIR": str(data_dir),
        "FACEFAAS_PORT": str(port),
        "FACEFAAS_RATE_LIMIT": "",
        "FACEFAAS_LOG_LEVEL": "warning",
        "FACEFAAS_INFERENCE_THREADS": "1",
        **env,
    }
    command = [sys.executable, "-m", "facefaas", "serve", *args]
    limit = ["prlimit", f"--as={ADDRESS_SPACE}", "--"]
    log = data_dir.with_name(data_dir.name + ".serve.log")
    with log.open("wb") as stderr:
        process = subprocess.Popen(limit + command, env=environ, stderr=stderr)
    served = Served(process, port)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"facefaas serve exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{served.url}/readyz", timeout=2).status_code == 200:
                return served
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("facefaas serve did not become ready")


def stop_serve(served: Served) -> None:
    served.process.terminate()
    try:
        served.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        served.process.kill()
        served.process.wait()
