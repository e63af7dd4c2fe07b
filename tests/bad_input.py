"""Bad input for the tests of the ingestion gate: generated bad values for every field rule of
the contract, written into copies of valid records, and hand-made files and folders of every
kind of landing mistake."""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from boussole.ingestion.contracts import LANDING_OBJECTS, LandingObject, landed_files

# One value of each kind of trouble seen in real exports: text, blanks, non-finite numbers,
# numbers too large for any staging type, fractions where ids are integers, negatives,
# timestamps in the wrong unit (epoch seconds, milliseconds, microseconds), impossible or
# implausible dates, and JSON of the wrong shape.
BAD_VALUES: tuple[object, ...] = (
    "abc",
    "",
    "NaN",
    "Infinity",
    "-Infinity",
    "1e30",
    1e30,
    99999999999999999999,
    -1,
    0,
    6.4,
    "6.4",
    "infinity",
    "epoch",
    "1970-01-01",
    "2026-02-30",
    "2099-01-01",
    1767225600,
    1767225600000,
    1767225600000000,
    {"nested": 1},
    [1, 2],
    True,
    None,
)


@dataclass(frozen=True)
class FuzzedRecord:
    landing_object: LandingObject
    path: str  # a field rule's path, or another field of the record
    value: object
    record_number: int  # in its fuzz file


def _set(record: dict, path: str, value: object) -> None:
    """Sets a dotted path; `name[*]` sets the field of the array's first element."""
    *parents, leaf = path.split(".")
    node = record
    for part in parents:
        if part.endswith("[*]"):
            items = node.setdefault(part[:-3], [{}])
            if not items or not isinstance(items[0], dict):
                node[part[:-3]] = items = [{}]
            node = items[0]
        else:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
    node[leaf] = value


def _leaf_paths(record: dict, prefix: str = "") -> list[str]:
    """Every field of a record, nested ones as dotted paths; an array of objects as its
    elements' fields (`name[*].field`)."""
    paths = []
    for key, value in record.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            paths += _leaf_paths(value, f"{path}.")
        elif isinstance(value, list) and value and isinstance(value[0], dict) and not prefix:
            paths += [path, *_leaf_paths(value[0], f"{path}[*].")]
        else:
            paths.append(path)
    return paths


def _records(landed) -> list[dict]:
    path = landed.path
    if landed.file_format == "json_document":
        return json.loads(path.read_text())[landed.landing_object.records_key or "results"]
    if landed.file_format == "csv":
        return list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


def _fresh_identity(landing_object: LandingObject, record: dict, n: int) -> None:
    """A copy must not be a version of its original: it gets an id (or event identity) of its
    own, far above the generated ones."""
    if landing_object.name == "events":
        record["user_pseudo_id"] = f"fuzz-{n}"
    elif "id" in record:
        record["id"] = 880_000_000 + n if isinstance(record["id"], int) else str(880_000_000 + n)


def write_fuzz(landing: Path, base_day: date, fuzz_day: date) -> list[FuzzedRecord]:
    """For every object, and every field of its rules or of a valid record of `base_day`, a
    copy of that record with each bad value in that field, in <object>_fuzz.<ext> files of
    `fuzz_day`."""
    fuzzed: list[FuzzedRecord] = []
    n = 0
    for source in {o.source for o in LANDING_OBJECTS}:
        for landed in landed_files(landing, source, base_day)[0]:
            landing_object = landed.landing_object
            if landed.path.stem.split(".")[0] != landing_object.name:
                continue  # one base file per object
            base = _records(landed)[0]
            out: list[dict] = []
            paths = [rule.path for rule in landing_object.rules]
            paths += [path for path in _leaf_paths(base) if path not in paths]
            for path in paths:
                for value in BAD_VALUES:
                    n += 1
                    record = json.loads(json.dumps(base))
                    _fresh_identity(landing_object, record, n)
                    _set(record, path, value)
                    out.append(record)
                    fuzzed.append(FuzzedRecord(landing_object, path, value, len(out)))
            folder = landing / source / fuzz_day.isoformat()
            folder.mkdir(parents=True, exist_ok=True)
            if landed.file_format == "csv":
                columns = list(base)
                buffer = io.StringIO()
                writer = csv.DictWriter(buffer, columns, extrasaction="ignore")
                writer.writeheader()
                for record in out:
                    writer.writerow(
                        {
                            k: json.dumps(v) if isinstance(v, dict | list) else v
                            for k, v in record.items()
                        }
                    )
                (folder / f"{landing_object.name}_fuzz.csv").write_text(buffer.getvalue())
            elif landed.file_format == "json_document":
                key = landing_object.records_key or "results"
                (folder / f"{landing_object.name}_fuzz.json").write_text(json.dumps({key: out}))
            else:
                (folder / f"{landing_object.name}_fuzz.jsonl").write_text(
                    "".join(json.dumps(record) + "\n" for record in out)
                )
    return fuzzed
