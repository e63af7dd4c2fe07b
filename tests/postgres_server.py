"""A throwaway PostgreSQL server for the tests that need a real one (tests/test_postgres.py,
tests/test_postgres_publication.py, tests/test_analyst_recipes.py).

It runs the machine's PostgreSQL (Debian's postgresql package, installed here when it is
missing and the tests run as root, as in CI), in a cluster of its own on a free port, with
trust authentication on 127.0.0.1 and an empty database `boussole` owned by the superuser
`boussole`.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg2

from tests.debian_packages import install_debian_package

# A cluster deleted after the tests needs no durability: nothing waits for the disk.
THROWAWAY = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def postgres_bin_dir() -> Path:
    """The server binaries, installed from Debian's packages when missing."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        install_debian_package("postgresql")
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_server(password_users: tuple[str, ...] = ()) -> Iterator[dict[str, str]]:
    """A running server with an empty database; yields the BOUSSOLE_PG_* variables that reach
    it, and stops and deletes it afterwards. The `password_users` log in with their password
    (SCRAM), the others without."""
    bin_dir = postgres_bin_dir()
    # Not under pytest's folder, which only its owner may enter: the server refuses to run
    # as root, so as root it runs as Debian's postgres user and owns this folder.
    root = Path(tempfile.mkdtemp(prefix="boussole-postgres-"))
    as_server_user = []
    if os.geteuid() == 0:
        shutil.chown(root, user="postgres")
        as_server_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"
    port = free_port()
    server = [*as_server_user, str(bin_dir / "pg_ctl"), "-D", str(data)]
    subprocess.run(
        [*as_server_user, str(bin_dir / "initdb"), "-D", str(data), "-U", "boussole",
         "--auth=trust", "-E", "UTF8", "--no-sync"],
        check=True, capture_output=True,
    )  # fmt: skip
    hba = data / "pg_hba.conf"
    # The first matching line wins: these before initdb's trust lines.
    hba.write_text(
        "".join(f"host all {user} 127.0.0.1/32 scram-sha-256\n" for user in password_users)
        + hba.read_text()
    )
    subprocess.run(
        [*server, "-l", str(root / "server.log"), "-w", "start",
         "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {root} {THROWAWAY}"],
        check=True, capture_output=True,
    )  # fmt: skip
    try:
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "boussole",
             "boussole"],
            check=True, capture_output=True,
        )  # fmt: skip
        yield {
            "BOUSSOLE_PG_HOST": "127.0.0.1",
            "BOUSSOLE_PG_PORT": str(port),
            "BOUSSOLE_PG_USER": "boussole",
            "BOUSSOLE_PG_DATABASE": "boussole",
        }
    finally:
        # Immediate: a throwaway cluster needs no shutdown checkpoint (seconds saved).
        subprocess.run([*server, "-m", "immediate", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def connect(postgres_env: dict[str, str], **overrides) -> psycopg2.extensions.connection:
    """A connection to the server as its superuser, or as `user=...` with `password=...`."""
    return psycopg2.connect(
        **{
            "host": postgres_env["BOUSSOLE_PG_HOST"],
            "port": postgres_env["BOUSSOLE_PG_PORT"],
            "user": postgres_env["BOUSSOLE_PG_USER"],
            "dbname": postgres_env["BOUSSOLE_PG_DATABASE"],
            **overrides,
        }
    )
