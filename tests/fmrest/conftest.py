"""Harness for the Data API end-to-end tests: boots the real genkan binary on loopback.

Each test module gets its own genkan in a fresh temporary directory (tests that need other
settings start their own with `start_genkan`). The config is examples/records-demo.toml without
its fixed plain-HTTP listener on port 3000: genkan listens on 127.0.0.1 with an ephemeral HTTPS
port only, so parallel and CI runs never collide. Everything here talks to loopback only.
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fmrest
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
HERE = Path(__file__).resolve().parent
GENKAN_BIN = Path(os.environ.get("GENKAN_BIN", ROOT / "target" / "debug" / "genkan"))

START_TIMEOUT = 30  # seconds for genkan to print where it serves
REQUEST_TIMEOUT = 10  # seconds for any one HTTP request
USER, PASSWORD = "demo", "demo-password"

# The second database the tests add: `shop`, whose `products` layout has number fields, for
# range finds and numeric sorts (the demo's `customers` has text fields only). A `contacts`
# layout on the demo database lets tests add portal rows (the Data API does not write portals);
# `Customer List 一覧` is a narrower layout of customers whose name needs percent-encoding.
EXTRA_CONFIG = """
[[records.layout]]
database = "demo"
name = "contacts"
table = "contacts"

[[records.layout]]
database = "demo"
name = "Customer List 一覧"
table = "customers"
fields = ["name", "phone"]

[[records.database]]
name = "shop"
setup_sql = "products.sql"

[[records.layout]]
database = "shop"
name = "products"
table = "products"

[[records.grant]]
group = "staff"
database = "shop"
tables = ["*"]
access = "write"
"""


def demo_config(records_settings: dict[str, Any] | None = None) -> str:
    """examples/records-demo.toml, on an ephemeral loopback HTTPS port, plus the shop database.

    `records_settings` go into the `[records]` table (e.g. session_idle_timeout = "2s").
    """
    text = (EXAMPLES / "records-demo.toml").read_text(encoding="utf-8")
    lines = []
    for line in text.splitlines():
        if line.strip().startswith("data_api_listen"):
            continue  # the fixed 127.0.0.1:3000 listener would collide between runs
        if line.startswith("data_dir"):
            lines += ['data_dir = "data"', 'listen_https = "127.0.0.1:0"', 'listen_http = "off"']
            continue
        lines.append(line)
        if line.strip() == "[records]":
            for key, value in (records_settings or {}).items():
                lines.append(f"{key} = {toml_value(value)}")
    if "[records]" not in text:
        raise AssertionError("examples/records-demo.toml has no [records] table any more")
    return "\n".join(lines) + "\n" + EXTRA_CONFIG


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class Genkan:
    """One running genkan: its process, directory and address."""

    process: subprocess.Popen
    directory: Path
    port: int
    reader: threading.Thread
    stdout_lines: list[str] = field(default_factory=list)

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def certificate(self) -> Path:
        return self.directory / "data" / "tls" / "self-signed.crt"

    @property
    def verify(self) -> str:
        # genkan's self-signed certificate (CN and SAN localhost, 127.0.0.1, ::1) is accepted by
        # requests/urllib3 as its own trust anchor, so TLS is really verified: no verify=False.
        return str(self.certificate)

    def api(self, path: str, version: str = "vLatest") -> str:
        return f"{self.origin}/fmi/data/{version}{path}"

    def server(self, database: str = "demo", layout: str = "customers",
               api_version: str = "vLatest", **options: Any) -> fmrest.Server:
        """A python-fmrest client for this genkan (not logged in yet)."""
        return fmrest.Server(
            self.origin,
            user=options.pop("user", USER),
            password=options.pop("password", PASSWORD),
            database=database,
            layout=layout,
            api_version=api_version,
            verify_ssl=self.verify,
            timeout=REQUEST_TIMEOUT,
            **options,
        )

    def request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """A raw HTTP call to a Data API path (`/databases/...`) or a full path (`/api/...`)."""
        url = self.origin + path if path.startswith(("/fmi/", "/api/")) else self.api(path)
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        kwargs.setdefault("verify", self.verify)
        return requests.request(method, url, **kwargs)

    def login(self, database: str = "demo") -> str:
        """A fresh Data API token (raw call)."""
        response = self.request("POST", f"/databases/{database}/sessions",
                                auth=(USER, PASSWORD), json={})
        assert response.status_code == 200, response.text
        return response.json()["response"]["token"]

    def stop(self) -> None:
        stop_process(self.process, self.reader)


def stop_process(process: subprocess.Popen, reader: threading.Thread) -> None:
    """SIGTERM (genkan drains and exits), SIGKILL after 10 s; then closes the stdout pipe."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    reader.join(timeout=5)
    if process.stdout is not None:
        process.stdout.close()


def start_genkan(records_settings: dict[str, Any] | None = None) -> Genkan:
    """Starts genkan in a fresh temporary directory; returns once it prints its address."""
    if not GENKAN_BIN.exists():
        raise AssertionError(f"no genkan binary at {GENKAN_BIN}: run `cargo build` or set GENKAN_BIN")
    directory = Path(tempfile.mkdtemp(prefix="genkan-fmrest-"))
    shutil.copy(EXAMPLES / "records-demo.sql", directory / "records-demo.sql")
    shutil.copy(HERE / "products.sql", directory / "products.sql")
    config = directory / "genkan.toml"
    config.write_text(demo_config(records_settings), encoding="utf-8")
    stderr = open(directory / "stderr.log", "wb")  # noqa: SIM115 - closed with the process
    env = {key: value for key, value in os.environ.items() if not key.startswith("GENKAN_")}
    process = subprocess.Popen(
        [str(GENKAN_BIN), "serve", "--config", str(config)],
        cwd=directory,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=env,
        text=True,
        encoding="utf-8",
    )
    stderr.close()
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def drain() -> None:  # keeps reading so genkan never blocks on a full pipe
        assert process.stdout is not None
        for line in process.stdout:
            seen.append(line)
            lines.put(line)
        lines.put(None)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    deadline = time.monotonic() + START_TIMEOUT
    first = None
    try:
        first = lines.get(timeout=max(0.1, deadline - time.monotonic()))
    except queue.Empty:
        pass
    match = re.fullmatch(r"genkan is serving https://localhost:(\d+)/\s*", first or "")
    if not match:
        process.kill()
        stop_process(process, reader)
        log = (directory / "stderr.log").read_text(encoding="utf-8", errors="replace")
        raise AssertionError(
            f"genkan did not start within {START_TIMEOUT} s (first line {first!r}); stderr:\n{log[-3000:]}"
        )
    return Genkan(process=process, directory=directory, port=int(match.group(1)),
                  reader=reader, stdout_lines=seen)


@pytest.fixture(scope="module")
def genkan():
    """One genkan per test module, on the demo config."""
    instance = start_genkan()
    yield instance
    instance.stop()
    shutil.rmtree(instance.directory, ignore_errors=True)


@pytest.fixture
def genkan_factory():
    """Starts genkans with special settings for one test; stops them afterwards."""
    started: list[Genkan] = []

    def start(records_settings: dict[str, Any] | None = None) -> Genkan:
        instance = start_genkan(records_settings)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.stop()
        shutil.rmtree(instance.directory, ignore_errors=True)


@pytest.fixture
def unique() -> str:
    """A value no other test uses, to keep each test's rows apart in a shared database."""
    return "t" + uuid.uuid4().hex[:12]
