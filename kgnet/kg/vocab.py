"""The RDF vocabulary kgnet writes and recognises.

IRIs are URNs on purpose: they identify, and nobody (rdflib included) will try to fetch them.
WordNet synsets are `wn:n02084071`, carrying the WordNet 3.0 offset (= the ImageNet wnid).
"""

from __future__ import annotations

from rdflib import Namespace

KGNET = Namespace("urn:kgnet:")
"""kgnet's own terms: `kgnet:wnid`, `kgnet:classIndex`, `kgnet:className`, `kgnet:hasPart`, ..."""

WN = Namespace("urn:kgnet:wn30:")
"""WordNet 3.0 synsets by wnid: `WN["n02084071"]` is dog.n.01."""
