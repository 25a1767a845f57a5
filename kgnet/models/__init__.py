"""The knowledge-injected network: a timm backbone, an R-GCN over the class graph, cross-attention
infusion of node embeddings into the visual tokens, and MLP + knowledge-prototype heads.

`create_model(config, graph)` builds a baseline or knowledge-injected `KgnetModel`; the parts
are importable for reuse and tests. What each knowledge scale uses is documented in
`kgnet.models.scales`, the ablation controls in `kgnet.models.controls`.
"""

from kgnet.models.backbone import Backbone
from kgnet.models.controls import apply_graph_control, apply_text_control
from kgnet.models.factory import create_model
from kgnet.models.heads import MLPHead, PrototypeHead
from kgnet.models.infusion import InfusionBlock
from kgnet.models.injection import KnowledgeInjection
from kgnet.models.kg_encoder import KnowledgeEncoder
from kgnet.models.kgnet_model import KgnetModel, KgnetOutput
from kgnet.models.scales import SCALES, KnowledgeView, select_view

__all__ = [
    "SCALES",
    "Backbone",
    "InfusionBlock",
    "KgnetModel",
    "KgnetOutput",
    "KnowledgeEncoder",
    "KnowledgeInjection",
    "KnowledgeView",
    "MLPHead",
    "PrototypeHead",
    "apply_graph_control",
    "apply_text_control",
    "create_model",
    "select_view",
]
