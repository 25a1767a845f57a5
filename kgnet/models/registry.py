"""The registry of model parts: a name -> the class that builds that part from its config section.

As timm's `create_model` looks up an entrypoint, `create_model` looks up each part a variant
names (`kgnet.variants`) here and asks the class to build itself from the `Plan` (the
run's config, the backbone, the class graph). Each class declares its contract:

- `slot`: where it sits in the model: `head`, `graph_encoder` or `infusion`;
- `sections`: the config sections it reads (a run whose variants read none of a section refuses
  a setting of it);
- `stream`: the random stream it draws its first weights from (`kgnet.models.factory`);
- `build(plan)`: the part, built and initialised (each part's own `reset_parameters`);
- `knowledge`: the kinds of ontology knowledge it reads (what a control may break);
- `needs_graph_encoder`: it reads the graph encoder's node embeddings;
- `graph_hops(config)`, `reads_text(config, variant)`, `settings(config, variant)`: how far around
  the classes its graph must reach, whether the run must encode node texts for it, and which
  settings it reads (`Part` gives the defaults);
- `rows()`: its weights whose rows belong to a class, node or relation (a trained model's weights
  carried into a model of an edited ontology, `kgnet.models.transfer`).

Heads declare more (`kgnet.models.heads.Head`): what they read, how they train and explain.
A part registers itself with `@register_part("name")` in its own module; the heads' modules are
imported by `kgnet.models.heads`, so a new head is one file there and its variant's entry.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any, Callable, ClassVar, TypeVar

from kgnet.config import Config, config_keys

if TYPE_CHECKING:
    from kgnet.variants import Variant

T = TypeVar("T")


class Registry(dict):
    """name -> registered class; an unknown name is a `KeyError` that suggests the closest."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register the class under `name` (its `name` attribute is set to it)."""

        def add(cls: T) -> T:
            if name in self:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self[name] = cls
            return cls

        return add

    def __missing__(self, name: str) -> Any:
        close = difflib.get_close_matches(name, list(self), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise KeyError(f"no {self.kind} {name!r}{hint}; registered: {', '.join(self)}")


#: Every model part, by name (the name a variant's composition uses).
PARTS = Registry("model part")
register_part = PARTS.register


class Part:
    """The contract's defaults, mixed into every part (see the module doc)."""

    slot: ClassVar[str]
    stream: ClassVar[str]
    sections: ClassVar[tuple[str, ...]] = ()
    knowledge: ClassVar[frozenset[str]] = frozenset()
    needs_graph_encoder: ClassVar[bool] = False

    def rows(self) -> dict[str, tuple[str, list[int] | None]]:
        """Its state-dict keys whose rows each belong to one `class`, graph `node` or `relation`
        (ids), or that are computed from the `ontology` (None): what `kgnet.models.transfer`
        carries over by identity, not position. None by default."""
        return {}

    @classmethod
    def graph_hops(cls, config: Config) -> int:
        """How far around the classes the run's graph must reach for this part (0: not at all)."""
        return 0

    @classmethod
    def reads_text(cls, config: Config, variant: Variant) -> bool:
        """Whether it reads the encoded node texts in `variant`."""
        return False

    @classmethod
    def settings(cls, config: Config, variant: Variant) -> set[str]:
        """The dotted config keys it reads in `variant`: every key of its sections."""
        return {key for section in cls.sections for key in config_keys(type(getattr(config, section)), f"{section}.")}
