"""Debian packages that some tests need (a PostgreSQL server, Chromium), installed by the tests
themselves when missing: CI starts from a clean machine where the tests run as root."""

import os
import subprocess

import pytest


def install_debian_package(package: str) -> None:
    """apt-get install `package`, or fail the test saying how when not root."""
    if os.geteuid() != 0:
        pytest.fail(f"{package} is not installed: apt-get install {package} (as root)")
    apt = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", package],
    ):
        subprocess.run(command, env=apt, check=True, capture_output=True, timeout=900)
