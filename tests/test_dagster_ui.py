"""`dagster dev` from the project root serves the asset graph, landing files to published mart."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

pytestmark = pytest.mark.e2e

QUERY = """
{ assetNodes { assetKey { path } groupName dependencyKeys { path } } }
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_dagster_dev_shows_the_asset_graph(workspace):
    port = free_port()
    env = {k: v for k, v in workspace.env.items() if k != "DAGSTER_HOME"}
    dagster = Path(sys.executable).parent / "dagster"
    process = subprocess.Popen(
        [str(dagster), "dev", "--port", str(port)],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        nodes = []
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and not nodes:
            time.sleep(2)
            try:
                nodes = graphql(port, QUERY)["data"]["assetNodes"]
            except OSError:
                continue
        assert nodes, "dagster dev served no asset graph within 180 s"
        by_key = {"/".join(n["assetKey"]["path"]): n for n in nodes}
        assert by_key["raw/crm/deals"]["groupName"] == "ingestion"
        assert by_key["published_mart"]["groupName"] == "publication"
        published_inputs = {"/".join(d["path"]) for d in by_key["published_mart"]["dependencyKeys"]}
        assert "kpi/kpi_values" in published_inputs
        staging_inputs = {
            "/".join(d["path"]) for d in by_key["staging/stg_crm__deal_versions"]["dependencyKeys"]
        }
        assert staging_inputs == {"raw/crm/deals"}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # A busy machine can keep the webserver, daemon and code server from stopping in
            # time; the test is about what the UI serves, so they are killed, not waited for.
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
