"""Injected regressions: each must fail the gate (agreement and/or quality) on both kinds;
one below the limits must pass. Prints the catch count."""

import pytest

from quantgate import agreement, quality
from quantgate.backends.mutant import parse
from quantgate.session import GateSession, GateSettings
from tests.conftest import ROOT

INJECTED = {
    "noise": "noise:0.5",
    "no-activation": "activation:identity",
    "double-activation": "activation:double",
    "max-length-32": "max_length:32",
    "cased-tokenizer": "tokenizer:cased",
    "naive-int8": "naive_int8:1",
    "negated": "negate:1",
}
BELOW_LIMITS = {"tiny-noise": "noise:0.001"}
RERANKER_ONLY = {"no-activation", "double-activation"}


def _gate(cache, candidate, data, top_k):
    gate = GateSession(GateSettings(candidate=str(candidate) if candidate else None, cache_dir=str(cache),
                                    data=(str(data),), thresholds=str(ROOT / "thresholds.toml"), max_queries=10,
                                    top_k=top_k, retrieval=False, device="cpu"))
    for name, body in {**INJECTED, **BELOW_LIMITS}.items():
        gate.registry.register(parse(f"{name}={body}"))
    return gate


@pytest.fixture(scope="module")
def gates(shared_reranker, scifact, tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    return {"reranker": _gate(cache, shared_reranker, scifact, 20), "embedder": _gate(cache, None, scifact, 20)}


def _failures(gate, name):
    spec = gate.registry.variants[name]
    return agreement.check_variant(gate, spec)[1] + quality.check_variant(gate, spec)[2]


@pytest.mark.parametrize("kind", ["reranker", "embedder"])
def test_every_injected_regression_is_caught_and_tiny_noise_is_not(gates, kind, record_property):
    gate = gates[kind]
    names = [n for n in INJECTED if kind == "reranker" or n not in RERANKER_ONLY]
    missed = [n for n in names if not _failures(gate, n)]
    false_alarms = [n for n in BELOW_LIMITS if _failures(gate, n)]
    record_property("caught", f"{len(names) - len(missed)}/{len(names)}")
    print(f"\n{kind}: caught {len(names) - len(missed)}/{len(names)}; false alarms {len(false_alarms)}/{len(BELOW_LIMITS)}")
    assert missed == [], f"{kind}: the gate let these regressions through: {missed}"
    assert false_alarms == [], f"{kind}: false alarm on {false_alarms}"
