"""The knowledge-injected network, composed of parts: a timm backbone, a graph encoder (R-GCN)
over the class graph, cross-attention infusion of node embeddings into the visual tokens, and a
head from a registry (`concept`, the default; `prototype`, the paper's; `plain`, the baseline's).

`create_model(config, graph)` builds a baseline or knowledge-injected `KgnetModel`; the parts
are importable for reuse and tests; `kgnet.models.head_registry` says what each head needs. What each knowledge scale uses is documented in
`kgnet.models.scales`, the ablation controls in `kgnet.models.controls`.
"""

from kgnet.models.backbone import Backbone
from kgnet.models.controls import apply_graph_control, apply_text_control
from kgnet.models.factory import create_model
from kgnet.models.concept_head import ConceptHead
from kgnet.models.graph_encoder import GraphEncoder
from kgnet.models.head_registry import HEADS, HeadSpec
from kgnet.models.heads import HeadOutput, MLPHead, PrototypeHead
from kgnet.models.infusion import InfusionBlock
from kgnet.models.kg_encoder import KnowledgeEncoder
from kgnet.models.kgnet_model import KgnetModel, KgnetOutput
from kgnet.models.scales import SCALES, KnowledgeView, select_view

__all__ = [
    "SCALES",
    "Backbone",
    "ConceptHead",
    "GraphEncoder",
    "HEADS",
    "HeadOutput",
    "HeadSpec",
    "InfusionBlock",
    "KgnetModel",
    "KgnetOutput",
    "KnowledgeEncoder",
    "KnowledgeView",
    "MLPHead",
    "PrototypeHead",
    "apply_graph_control",
    "apply_text_control",
    "create_model",
    "select_view",
]
