"""kgnet: image classifiers that use knowledge about their classes.

Knowledge stored as RDF is compiled into a typed graph (`kgnet.kg`); a model (`kgnet.models`)
is a timm backbone, a graph encoder (R-GCN), cross-attention infusion of node embeddings into
the visual tokens, and a head from a registry. The default `kgnet` scores every class as an
exact sum of its ontology concepts' activations (the concept head alone, chosen on
validation); `kgnet-composed` adds the R-GCN and the infusion, `kgnet-prototype` is the
paper's design.
"""

import importlib.util
import sys
from typing import Any

__version__ = "0.1.0"

__all__ = ["create_model"]

#: Packages every command imports (module names); a Python without them is not kgnet's.
_REQUIRED = ("torch", "timm", "torch_geometric", "rdflib", "safetensors", "yaml", "numpy")


def _check_dependencies() -> None:
    """One line instead of a traceback when kgnet runs in a Python that lacks its packages
    (`python -m kgnet.train` outside the venv `make install` made)."""
    missing = [name for name in _REQUIRED if importlib.util.find_spec(name) is None]
    if not missing:
        return
    message = (f"this Python ({sys.executable}) lacks kgnet's packages ({', '.join(missing)}): run `make install`, "
               "then `. .venv/bin/activate` (or type .venv/bin/python for python); or `pip install .` here")
    if sys.argv[:1] == ["-m"]:  # `python -m kgnet...` is locating its module: a command line, not an import
        sys.stderr.write(f"error: {message}\n")
        raise SystemExit(2)
    raise ImportError(message)


_check_dependencies()


def __getattr__(name: str) -> Any:
    if name == "create_model":
        # deferred: `import kgnet` stays light (no torch, no timm) for the CLIs' argument parsing and errors
        from kgnet.models import create_model

        return create_model
    raise AttributeError(f"module 'kgnet' has no attribute {name!r}")
