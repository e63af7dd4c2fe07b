"""YAML files read by the pipeline on every run (the catalogue, the suites)."""

from pathlib import Path
from typing import Any

import yaml

# libyaml's parser, about ten times faster than the pure Python one: the catalogue is read
# several times per run. PyYAML's wheels ship it; a build without it falls back.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> Any:
    """The document of the YAML file at `path` (safe loading: plain data only)."""
    return yaml.load(path.read_text(), Loader=_LOADER)
