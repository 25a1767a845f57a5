"""kgnet: image classifiers that use knowledge about their classes.

Knowledge stored as RDF is compiled into a typed graph (`kgnet.kg`), encoded by an R-GCN and
fused into a timm backbone's visual tokens by cross-attention.
"""

__version__ = "0.1.0"
