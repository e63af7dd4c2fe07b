"""Which landing folder is the generated sample: the only data the public development key may
pseudonymise without BOUSSOLE_ALLOW_DEVELOPMENT_KEY (boussole/pii_key.py).

`boussole generate` lists the files it wrote, with their sizes, in <landing>/SAMPLE_MARKER. A
landing folder is the sample while every file in it is one of those, at its size: an export
dropped beside them, or written over one of them, makes it real data.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

from boussole.ingestion.contracts import SAMPLE_MARKER


def _listed(landing_dir: Path) -> dict[str, int]:
    try:
        return json.loads((landing_dir / SAMPLE_MARKER).read_text())["files"]
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return {}


def mark_sample(landing_dir: Path, files: Iterable[Path]) -> None:
    """Adds `files` (just generated under `landing_dir`) to its marker, with their sizes."""
    listed = _listed(landing_dir)
    listed |= {path.relative_to(landing_dir).as_posix(): path.stat().st_size for path in files}
    document = {"written_by": "boussole generate", "files": dict(sorted(listed.items()))}
    (landing_dir / SAMPLE_MARKER).write_text(json.dumps(document, indent=1) + "\n")


def not_the_sample(landing_dir: Path) -> str | None:
    """Why `landing_dir` is not the sample `boussole generate` wrote, or None when it is."""
    if not (landing_dir / SAMPLE_MARKER).is_file():
        return f"it holds no {SAMPLE_MARKER}, which `boussole generate` writes"
    listed = _listed(landing_dir)
    # Links are never followed: a link is not a file the generator wrote.
    for folder, subfolders, names in os.walk(landing_dir):
        for name in sorted([*names, *(d for d in subfolders if Path(folder, d).is_symlink())]):
            path = Path(folder, name)
            relative = path.relative_to(landing_dir).as_posix()
            if relative == SAMPLE_MARKER:
                continue
            if path.is_symlink() or listed.get(relative) != path.stat().st_size:
                return f"{relative} is not a file `boussole generate` wrote there"
    return None
