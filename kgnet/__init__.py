"""kgnet: image classifiers that use knowledge about their classes.

Knowledge stored as RDF is compiled into a typed graph (`kgnet.kg`), encoded by an R-GCN and
fused into a timm backbone's visual tokens by cross-attention (`kgnet.models`).
"""

from typing import Any

__version__ = "0.1.0"

__all__ = ["create_model"]


def __getattr__(name: str) -> Any:
    # `import kgnet` stays light (no torch, no timm) for the CLIs' argument parsing and errors
    if name == "create_model":
        from kgnet.models import create_model

        return create_model
    raise AttributeError(f"module 'kgnet' has no attribute {name!r}")
