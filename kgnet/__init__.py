"""kgnet: image classifiers that use knowledge about their classes.

Knowledge stored as RDF is compiled into a typed graph (`kgnet.kg`); a model (`kgnet.models`)
is a timm backbone, a graph encoder (R-GCN), cross-attention infusion of node embeddings into
the visual tokens, and a head from a registry. The default `kgnet` scores every class as an
exact sum of its ontology concepts' activations (the concept head alone, chosen on
validation); `kgnet-composed` adds the R-GCN and the infusion, `kgnet-prototype` is the
paper's design.
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["create_model"]


def __getattr__(name: str) -> Any:
    if name == "create_model":
        # deferred: `import kgnet` stays light (no torch, no timm) for the CLIs' argument parsing and errors
        from kgnet.models import create_model

        return create_model
    raise AttributeError(f"module 'kgnet' has no attribute {name!r}")
