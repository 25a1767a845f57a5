"""The knowledge-injected network, composed of registered parts: a timm backbone, a graph encoder
(R-GCN) over the class graph, cross-attention infusion of node embeddings into the visual
tokens, and a head (`concept`, the default; `prototype`, the paper's; `mlp`, the baseline's).

`create_model(config, graph, variant=...)` builds a variant's `KgnetModel` (`kgnet.variants`
names each variant's parts); `kgnet.models.registry.PARTS` holds the parts, and each part's
class says what it needs. What each knowledge scale uses is documented in
`kgnet.models.scales`, the controls in `kgnet.models.controls`.
"""

from kgnet.models.backbone import Backbone
from kgnet.models.controls import CONTROLS, Control
from kgnet.models.factory import Knowledge, Plan, create_model, graph_hops, parts_of, reads_ontology, reads_text
from kgnet.models.graph_encoder import GraphEncoder, NoGraphEncoder
from kgnet.models.heads import Head, HeadOutput, NodeStart
from kgnet.models.heads.concept import ConceptHead
from kgnet.models.heads.mlp import MLPHead
from kgnet.models.heads.prototype import PrototypeHead
from kgnet.models.infusion import Infusion, InfusionBlock, NoInfusion
from kgnet.models.kg_encoder import KnowledgeEncoder
from kgnet.models.kgnet_model import KgnetModel, KgnetOutput
from kgnet.models.registry import PARTS, register_part
from kgnet.models.scales import SCALES, KnowledgeView, select_view

__all__ = [
    "CONTROLS",
    "PARTS",
    "SCALES",
    "Backbone",
    "ConceptHead",
    "Control",
    "GraphEncoder",
    "Head",
    "HeadOutput",
    "Infusion",
    "InfusionBlock",
    "KgnetModel",
    "KgnetOutput",
    "Knowledge",
    "KnowledgeEncoder",
    "KnowledgeView",
    "MLPHead",
    "NoGraphEncoder",
    "NoInfusion",
    "NodeStart",
    "Plan",
    "PrototypeHead",
    "create_model",
    "graph_hops",
    "parts_of",
    "reads_ontology",
    "reads_text",
    "register_part",
    "select_view",
]
