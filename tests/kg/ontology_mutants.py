"""Seeded mutants of a real ontology: the mistakes and damage a user's RDF file can carry.

Each mutant is a file body plus the suffix to save it under and extra CLI arguments; the same
seed always gives the same mutants, so a failure names a reproducible case. Used by
`test_kg_fuzz.py`; the operators stay small and readable rather than clever.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from typing import Callable

SUBCLASS = b"<http://www.w3.org/2000/01/rdf-schema#subClassOf>"


@dataclass
class Mutant:
    """One damaged ontology: what was done, the bytes, the file suffix, extra `check` arguments."""

    description: str
    data: bytes
    suffix: str
    args: list[str] = field(default_factory=list)
    source: str = ""
    """The file name the mutant was made from."""


def _iris(data: bytes) -> list[bytes]:
    """Full IRIs in the file (to build cycles and imports from real nodes); at least five."""
    found = sorted(set(re.findall(rb"<(?:urn|http)[^<>\s\"]*>", data)))
    return found if len(found) >= 5 else found + [b"<urn:kgnet:fuzz:n%d>" % i for i in range(5)]


def _lines(data: bytes) -> list[bytes]:
    return data.split(b"\n")


def flip_bytes(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    out = bytearray(data or b" ")
    positions = sorted(rng.randrange(len(out)) for _ in range(rng.randint(1, 3)))
    for pos in positions:
        out[pos] = rng.randrange(256)
    return f"bytes changed at {positions}", bytes(out)


def truncate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    cut = rng.randrange(len(data)) if len(data) > 1 else 0
    return f"truncated to {cut} bytes", data[:cut]


def delete_lines(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    lines = _lines(data)
    gone = sorted(rng.sample(range(len(lines)), min(len(lines), rng.randint(1, 3))))
    return f"deleted lines {[g + 1 for g in gone]}", b"\n".join(x for i, x in enumerate(lines) if i not in gone)


def duplicate_or_swap_lines(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    lines = _lines(data)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    if rng.random() < 0.5:
        lines.insert(j, lines[i])
        return f"line {i + 1} copied before line {j + 1}", b"\n".join(lines)
    lines[i], lines[j] = lines[j], lines[i]
    return f"lines {i + 1} and {j + 1} swapped", b"\n".join(lines)


def bad_prefix(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    prefixes = re.findall(rb"@prefix ([\w-]*):", data) or re.findall(rb"xmlns:([\w-]+)=", data)
    choice = rng.randrange(3)
    if not prefixes or choice == 0:
        return "an undeclared prefix used", data.replace(b" .\n", b" ;\n    nope:thing nope:other .\n", 1)
    name = rng.choice(prefixes)
    if choice == 1:  # declaration deleted, uses kept
        out = re.sub(rb"@prefix " + re.escape(name) + rb":[^\n]*\n", b"", data, count=1)
        out = re.sub(rb'xmlns:' + re.escape(name) + rb'="[^"]*"', b"", out, count=1)
        return f"prefix {name.decode()!r} undeclared", out
    out = re.sub(rb"(@prefix " + re.escape(name) + rb": )<[^>]*>", rb"\1<not a valid iri {}>", data, count=1)
    return f"prefix {name.decode()!r} bound to a broken IRI", out


def invalid_utf8(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    bad = rng.choice([b"\xff", b"\xc3\x28", b"\xe2\x82", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80", b"\xf5\x80\x80\x80"])
    pos = rng.randrange(len(data) + 1)
    return f"invalid UTF-8 {bad!r} at byte {pos}", data[:pos] + bad + data[pos:]


def nul_bytes(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    positions = sorted(rng.randrange(len(data) + 1) for _ in range(rng.randint(1, 2)))
    out = data
    for pos in reversed(positions):
        out = out[:pos] + b"\x00" + out[pos:]
    return f"NUL inserted at {positions}", out


def punctuation(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    token = rng.choice([b".", b";", b",", b"[", b"]", b"(", b")", b"{", b"}", b'"', b'"""', b"'", b"@", b"^^",
                        b"<", b">", b"_:", b"#", b"\\", b"\\u12", b"a", b"<>", b"&", b"</x>", b"@en-", b"1e"])
    pos = rng.randrange(len(data) + 1)
    return f"{token!r} inserted at byte {pos}", data[:pos] + token + data[pos:]


def subclass_cycle(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    iris = _iris(data)
    length = rng.randint(1, 3)  # 1: a self-loop
    ring = rng.sample(iris, length)
    triples = b"".join(a + b" " + SUBCLASS + b" " + b_ + b" .\n" for a, b_ in zip(ring, ring[1:] + ring[:1]))
    return f"subClassOf cycle of {length}", data + b"\n" + triples


def huge_literal(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    size = rng.choice([100_000, 1_000_000])
    iris = _iris(data)
    node = rng.choice(iris)
    kind = rng.randrange(3)
    if kind == 0:
        triple = node + b' <http://www.w3.org/2000/01/rdf-schema#comment> "' + b"x" * size + b'" .\n'
    elif kind == 1:
        triple = node + b" <http://example.org/p> <http://example.org/" + b"y" * size + b"> .\n"
    else:
        triple = node + b' <http://example.org/n> "' + b"9" * size + b'"^^<http://www.w3.org/2001/XMLSchema#integer> .\n'
    return f"a {size:,}-character {['literal', 'IRI', 'integer'][kind]}", data + b"\n" + triple


def deep_nesting(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    depth = rng.choice([50, 2_000, 20_000])
    node = rng.choice(_iris(data))
    if rng.random() < 0.5:
        body = b"[ <http://example.org/p> " * depth + b"<http://example.org/o>" + b" ]" * depth
        return f"blank nodes nested {depth} deep", data + b"\n" + node + b" <http://example.org/p> " + body + b" .\n"
    items = b" ".join(rng.sample(_iris(data), 5) * (depth // 5))
    union = (node + b" <http://www.w3.org/2002/07/owl#equivalentClass> [ <http://www.w3.org/2002/07/owl#unionOf> ( "
             + items + b" ) ] .\n")
    return f"an owl:unionOf list of {depth} members", data + b"\n" + union


def remote_reference(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    # Port 9 (discard) on the loopback: a connection attempt would be seen by the network guard.
    url = rng.choice([b"http://127.0.0.1:9/base.owl", b"https://example.org/imports.ttl", b"file:///etc/passwd"])
    triple = (b"<urn:kgnet:fuzz> <http://www.w3.org/2002/07/owl#imports> <" + url + b"> .\n"
              b"<urn:kgnet:fuzz> a <http://www.w3.org/2002/07/owl#Ontology> .\n")
    return f"owl:imports {url.decode()}", data + b"\n" + triple


OPERATORS: dict[str, Callable[[bytes, random.Random], tuple[str, bytes]]] = {
    "flip": flip_bytes,
    "truncate": truncate,
    "delete_lines": delete_lines,
    "duplicate_or_swap": duplicate_or_swap_lines,
    "bad_prefix": bad_prefix,
    "invalid_utf8": invalid_utf8,
    "nul": nul_bytes,
    "punctuation": punctuation,
    "cycle": subclass_cycle,
    "huge": huge_literal,
    "deep": deep_nesting,
    "remote": remote_reference,
}
"""Operators for Turtle text; `cycle`, `huge`, `deep` and `remote` append N-Triples lines, valid Turtle."""

BYTE_OPERATORS = ("flip", "truncate", "delete_lines", "duplicate_or_swap", "invalid_utf8", "nul", "punctuation")
"""Operators that make sense for any serialisation (the others write Turtle syntax)."""

FORMATS = ("turtle", "xml", "nt", "json-ld", "trig", "nquads", "n3", "trix")


def mutants(sources: dict[str, bytes], count: int, seed: int) -> list[Mutant]:
    """`count` seeded mutants of `sources` (file name -> its bytes; the suffix says the syntax).

    Every operator gets its share; about one mutant in eight stacks a second operator, and one
    in ten also passes a `--format` that may not match the file.
    """
    rng = random.Random(seed)
    files = sorted(sources)
    names = sorted(OPERATORS)
    found = []
    for n in range(count):
        file = files[n % len(files)]
        suffix = "." + file.rsplit(".", 1)[-1]
        allowed = names if suffix == ".ttl" else sorted(BYTE_OPERATORS)
        data = sources[file]
        steps = [allowed[(n // len(files)) % len(allowed)]]
        if rng.random() < 0.125:
            steps.append(rng.choice(allowed))
        described = []
        for step in steps:
            what, data = OPERATORS[step](data, rng)
            described.append(f"{step}: {what}")
        args = []
        if rng.random() < 0.1:
            fmt = rng.choice(FORMATS)
            args = ["--format", fmt]
            described.append(f"--format {fmt}")
        found.append(Mutant(f"seed {seed} #{n} {file} " + "; ".join(described), data, suffix, args, file))
    return found
