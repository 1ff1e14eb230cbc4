"""Checks every method gets, whatever its kind."""

from __future__ import annotations

import json
import re
from typing import Any

import annotated_types
from pydantic import BaseModel

from ..errors import ConfigError
from ..kinds import BASES
from ..method import Paper
from .base import ALL, CheckFailed, Subject, check
from .runs import compare_runs, compose_and_reload, exercise

ARXIV_ID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _normalize(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


@check(ALL, "registers", "registers under its declared name and kind, from a plugin that loads", slow=False)
def registers(s: Subject) -> str:
    reg = s.registry
    failures = [f for f in reg.failures if s.entry is None and f.plugin == s.name
                or s.entry is not None and f.plugin == s.entry.plugin]
    if s.entry is None:
        f = failures[0]
        raise CheckFailed(f"plugin {s.name!r} ({f.distribution}) failed to load: {f.error}")
    if failures:
        raise CheckFailed(f"plugin {s.entry.plugin!r} registered {s.entry.name!r} but also failed: {failures[0].error}")
    cls, e = s.cls, s.entry
    if not issubclass(cls, BASES[e.kind]):
        raise CheckFailed(f"{cls.__name__} registered as {e.kind} is not a {BASES[e.kind].__name__}")
    if cls.kind != e.kind:
        raise CheckFailed(f"{cls.__name__}.kind is {cls.kind!r} but it is registered as {e.kind}")
    if not NAME.match(cls.name) or cls.name != e.name:
        raise CheckFailed(f"{cls.__name__}.name {cls.name!r} must be a lowercase identifier equal to its registry "
                          f"name {e.name!r}")
    if reg.get(e.kind, e.name).cls is not cls:
        raise CheckFailed(f"registry lookup of {e.kind} {e.name!r} gives another class")
    if e.distribution not in ("splice", "(local)", "?"):
        expected = f"splice-plugin-{e.plugin}"
        if _normalize(e.distribution) != _normalize(expected):
            raise CheckFailed(f"distribution {e.distribution!r} should be named {expected!r} after its "
                              f"entry point {e.plugin!r}")
    return f"{e.kind} {e.name!r} from {e.distribution} {e.version} (entry point {e.plugin!r})"


@check(ALL, "paper", "has a paper reference: title, claim, well-formed arXiv id", slow=False)
def paper(s: Subject) -> str:
    p = s.cls.paper
    if p is None:
        raise CheckFailed(f"{s.cls.__name__}.paper is not set (splice.Paper(title=..., arxiv=..., claim=...))")
    if not isinstance(p, Paper):
        raise CheckFailed(f"{s.cls.__name__}.paper must be a splice.Paper, not {type(p).__name__}")
    if not p.title.strip():
        raise CheckFailed("paper.title is empty")
    if not p.claim.strip():
        raise CheckFailed("paper.claim is empty: state the claim the plugin reproduces")
    if p.arxiv is not None and not ARXIV_ID.match(p.arxiv):
        raise CheckFailed(f"paper.arxiv {p.arxiv!r} is not an arXiv id such as '2402.04291'")
    return p.title + (f" (arXiv {p.arxiv})" if p.arxiv else "")


_CANDIDATES: list[Any] = ["__not_valid__", ["__not_valid__"], {"__not_valid__": 1}]


def _bound_violations(field) -> list[Any]:
    """Values just outside the numeric bounds declared on a field (Field(gt=0) -> 0 ...)."""
    out: list[Any] = []
    for meta in field.metadata:
        if isinstance(meta, annotated_types.Gt):
            out.append(meta.gt)
        elif isinstance(meta, annotated_types.Ge):
            out.append(meta.ge - 1)
        elif isinstance(meta, annotated_types.Lt):
            out.append(meta.lt)
        elif isinstance(meta, annotated_types.Le):
            out.append(meta.le + 1)
    return out


def _bad_values(name: str, field) -> list[Any]:
    vals = _bound_violations(field)
    return vals + [v for v in _CANDIDATES if field.annotation is not Any]


@check(ALL, "config", "config is a pydantic model: defaults validate and survive JSON, unknown or bad values "
       "raise ConfigError naming the field", slow=False)
def config(s: Subject) -> str:
    cls = s.cls
    Config = cls.Config
    if not (isinstance(Config, type) and issubclass(Config, BaseModel)):
        raise CheckFailed(f"{cls.__name__}.Config must be a pydantic model (subclass splice.MethodConfig)")
    try:
        default = cls.make_config({})
        Config()
    except Exception as err:  # noqa: BLE001
        raise CheckFailed(f"the default config does not validate: {err}") from None
    as_json = json.loads(json.dumps(default.model_dump(mode="json")))  # what an artifact stores
    try:
        again = cls.make_config(as_json)
    except Exception as err:  # noqa: BLE001
        raise CheckFailed(f"the default config does not survive a JSON round-trip (artifacts store JSON): {err}") \
            from None
    if again != default:
        raise CheckFailed("the default config changes through a JSON round-trip (artifacts store JSON)")
    try:
        cls.make_config({"__not_a_field__": 1})
    except ConfigError as err:
        if "__not_a_field__" not in str(err):
            raise CheckFailed(f"the error for an unknown field does not name it: {err}") from None
    except Exception as err:  # noqa: BLE001
        raise CheckFailed(f"an unknown field raises {type(err).__name__}, not splice.ConfigError") from None
    else:
        raise CheckFailed("an unknown config field is silently accepted (set extra='forbid'; subclass "
                          "splice.MethodConfig)")
    checked, untestable = [], []
    for name, field in Config.model_fields.items():
        hit = None
        for bad in _bad_values(name, field):
            try:
                cls.make_config({name: bad})
            except ConfigError as err:
                hit = (bad, str(err))
                break
            except Exception as err:  # noqa: BLE001
                raise CheckFailed(f"field {name!r} = {bad!r} raises {type(err).__name__} ({err}), "
                                  "not splice.ConfigError") from None
        if hit is None:
            untestable.append(name)
            continue
        bad, msg = hit
        if not re.search(rf"\b{re.escape(name)}\b", msg):
            raise CheckFailed(f"the error for {name} = {bad!r} does not name the field: {msg!r}")
        try:
            cls({name: bad})
        except ConfigError:
            pass
        else:
            raise CheckFailed(f"{cls.__name__}({{{name!r}: {bad!r}}}) is accepted by the constructor "
                              "(does __init__ skip make_config?)")
        checked.append(name)
    note = f"; no invalid value found for {', '.join(untestable)}" if untestable else ""
    return f"{len(checked)} field(s) refuse bad values with a named error{note}"


@check(ALL, "deterministic", "two runs with the same seed give identical outputs")
def deterministic(s: Subject) -> str:
    a = exercise(s)
    b = exercise(s)
    diffs = compare_runs(a, b)
    if diffs:
        raise CheckFailed("two runs with the same seed differ: " + "; ".join(diffs))
    return "identical " + ", ".join(sorted(a))


@check(ALL, "roundtrip", "its state round-trips through an artifact: compose, save, load, identical outputs")
def roundtrip(s: Subject) -> str:
    return compose_and_reload(s, partners=False)


@check(ALL, "composes", "composes with the built-ins of every other kind in one compose run, and that artifact "
       "round-trips")
def composes(s: Subject) -> str:
    return compose_and_reload(s, partners=True, baseline=True)

