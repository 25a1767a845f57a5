"""What `--resume` reads back from a killed run, and what it refuses.

A resumed run continues with the config it started with: config.yaml is the run's, and every
checkpoint (`last.pt`) and release (`model.json`) keeps the settings its variant trained
with, so an edited config.yaml is caught before anything trains. A variant counts as finished
only when its metrics.json entry holds the training numbers too (an entry that
`python -m kgnet.evaluate` merged for a variant whose training was killed after its release
does not): an unfinished one continues from its last.pt, which at the last epoch just
re-records it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Iterable

from kgnet.config import Config, config_to_dict
from kgnet.engine.checkpoint import load_training_state
from kgnet.errors import ConfigError
from kgnet.release import META

log = logging.getLogger("kgnet.train")

#: Keys that only training writes into a variant's metrics.json entry.
TRAINING_KEYS = ("params", "train_seconds", "epochs")
#: Temporary files an interrupted atomic write leaves (`kgnet.atomic`): `.<name>.<random>.tmp`.
TEMPORARY = ".*.tmp"


def finished_variants(metrics: dict[str, Any], variants: Iterable[str]) -> dict[str, Any]:
    """The metrics.json entries of `variants` that training finished (their training numbers recorded)."""
    finished = {}
    for name in variants:
        entry = metrics.get(name)
        if isinstance(entry, dict) and all(key in entry for key in TRAINING_KEYS):
            finished[name] = entry
        elif entry is not None:
            log.info("%s: its metrics.json entry lacks the training numbers (the run was killed before they were "
                     "written); it is recorded again from its last.pt", name)
    return finished


def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {k: v for key, value in tree.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): tree}


def _changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """'key: saved -> current' for every setting that differs (JSON-normalised: tuples are lists)."""
    old, new = (_flat(json.loads(json.dumps(d))) for d in (saved, current))
    return [f"{key}: {old.get(key)!r} -> {new.get(key)!r}" for key in sorted(old.keys() | new.keys())
            if old.get(key) != new.get(key)]


def refuse_changed_settings(config: Config, folder: Path, finished: dict[str, Any]) -> None:
    """Raise ConfigError when config.yaml differs from the settings a variant of the run trained with.

    Finished variants are compared through their release's model.json, unfinished ones
    through the settings kept in their last.pt (a checkpoint from before this was recorded
    is not compared).
    """
    current = config_to_dict(config)
    for name in config.variants:
        vfolder = folder / name
        sources = [vfolder / META] if name in finished else [vfolder / "last.pt", vfolder / "calibration" / "last.pt"]
        for source in sources:
            if not source.is_file():
                continue
            saved = (json.loads(source.read_text()).get("config") if source.suffix == ".json"
                     else load_training_state(source).get("config"))
            changes = _changes(saved, current) if isinstance(saved, dict) else []
            if changes:
                raise ConfigError(
                    f"--resume {folder}: config.yaml was changed after {source.relative_to(folder)} was written "
                    f"({'; '.join(changes[:5])}{'; ...' if len(changes) > 5 else ''}); a run continues with "
                    "the settings it started with: restore config.yaml, or train the new settings into a new "
                    "folder (python -m kgnet.train --config <folder>/config.yaml --set ... --out NEW)")


def remove_stale_temporaries(folder: Path) -> None:
    """Delete the temporary files a killed write left in the run folder and its variant folders."""
    for tmp in [*folder.glob(TEMPORARY), *folder.glob(f"*/{TEMPORARY}"), *folder.glob(f"*/*/{TEMPORARY}")]:
        if tmp.is_file():
            log.info("removing %s, left by an interrupted write", tmp)
            tmp.unlink(missing_ok=True)
