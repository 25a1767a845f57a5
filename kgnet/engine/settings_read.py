"""Every setting a run is given is read by one of its variants, or the run says so before it starts.

A part's settings live in its own config section (`concept_head`, `graph_encoder`, ...) and each
registered part says which of them it reads in a variant (`Part.settings`). A setting that none
of the run's variants reads would change nothing: given with `--set` (or changed in code) it is a
`ConfigError` naming the setting, the run's variants and the variants that do read it; set in a
config file (a file may be shared by runs of other variants) it is one warning listing every
such setting. The sections every variant reads (`data`, `model`, `knowledge`, `train`) are
never unread.
"""

from __future__ import annotations

import logging
from typing import Any

from kgnet.config import Config, config_keys
from kgnet.errors import ConfigError
from kgnet.models import PARTS, parts_of
from kgnet.variants import VARIANTS, Variant

log = logging.getLogger(__name__)

#: The config sections that belong to a part (the others are read by every variant).
PART_SECTIONS = tuple(sorted({section for part in PARTS.values() for section in part.sections}))


def settings_read(config: Config, variant: Variant) -> set[str]:
    """The dotted keys of the part sections that `variant`'s parts read."""
    return set().union(*(part.settings(config, variant) for part in parts_of(variant).values()))


def _value(config: Config, key: str) -> Any:
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)


def _given(config: Config, key: str, defaults: Config) -> bool:
    """Whether `key` was given: on the command line (`--set`, whatever its value), or with a value
    other than its default (in a file, or in code)."""
    return config.sources.get(key, "").startswith("--set ") or _value(config, key) != _value(defaults, key)


def check_settings_read(config: Config, variants: list[Variant]) -> None:
    """Refuse (or, for a config file's settings, warn about) settings none of `variants` reads.

    Raises:
        ConfigError: one message listing every such setting given with `--set` or in code.
    """
    defaults = Config()
    read = {variant.name: settings_read(config, variant) for variant in variants}
    names = ", ".join(read)
    refused, warned, partly = [], [], []
    for section in PART_SECTIONS:
        for key in config_keys(type(getattr(config, section)), f"{section}."):
            if not _given(config, key, defaults):
                continue
            readers = [name for name, keys in read.items() if key in keys]
            source = config.sources.get(key)
            if readers:
                if len(readers) < len(read):
                    partly.append(f"{key} (read by {', '.join(readers)} only)")
                continue
            by = [name for name, v in VARIANTS.items() if key in settings_read(config, v)]
            said = (f"{source}" if source else f"{key}={_value(config, key)!r}") + \
                f" (read by {', '.join(by) if by else 'no variant with these settings'})"
            (warned if source and not source.startswith("--set ") else refused).append(said)
    if refused:
        raise ConfigError(f"no variant of this run ({names}) reads {'; '.join(refused)}: add a variant that reads "
                          f"{'it' if len(refused) == 1 else 'them'} to `variants`, or drop "
                          f"{'it' if len(refused) == 1 else 'them'}")
    if warned:
        log.warning("the config file sets what no variant of this run (%s) reads, so it changes nothing: %s",
                    names, "; ".join(warned))
    if partly:
        log.info("settings read by some of this run's variants only: %s", "; ".join(partly))

