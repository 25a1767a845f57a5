"""Errors a user can cause.

Every CLI catches `KgnetError`, prints its message and exits with status 2; anything else is
a bug in kgnet and keeps its traceback. Messages name the file (and line where there is one)
and say what to do.
"""

from __future__ import annotations


class KgnetError(Exception):
    """A mistake in the user's input: config, files, ontology, class names."""

    exit_code = 2


class ConfigError(KgnetError):
    """Unknown config key, wrong value type, unreadable YAML."""


class OntologyError(KgnetError):
    """An RDF file that cannot be read: malformed, truncated, unknown format, missing."""


class ClassMappingError(KgnetError):
    """Dataset classes that do not bind to exactly one ontology node."""


class DataMissingError(KgnetError):
    """A data set or corpus (WordNet, Fashion-MNIST, ...) that is not on this machine."""


class WriteError(KgnetError):
    """A file kgnet could not write: the disk is full, a quota, a read-only or unwritable folder."""
