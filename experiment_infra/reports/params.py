"""The parameters beside the results: which config fields differ between a suite's cases,
and which cases differ only in their seed (a condition run several times).

Reports show, per case, the fields that vary (not the ones every case shares), and
summarize a condition's metrics over its seeds; ``compare`` matches the conditions of
several runs by the same fields.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .stats import Summary, summarize

__all__ = [
    "SEED", "Condition", "condition_key", "group_by_condition", "label_of", "params_by_case", "seed_of", "shown_value",
    "varying_fields",
]

SEED = "seed"
# Set by the runner to each case's own directory: it always differs and says nothing.
PER_CASE = frozenset({"output_dir"})
_ABSENT = "\x00absent"  # a field one config lacks (another version of the config class)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _canonical(value: Any) -> str:
    """A value as a key: equal values, equal keys (1 and 1.0 differ, as in the config file).
    Scalars without the JSON encoder: a comparison of many runs makes thousands."""
    kind = type(value)
    if kind is str:
        return "s" + value
    if kind is int or kind is float or kind is bool or value is None:
        return repr(value)
    return "j" + _json(value)


def varying_fields(configs: Iterable[Mapping[str, Any]]) -> list[str]:
    """The fields whose value is not the same in every config (a field some lack counts
    as differing), in the order the configs name them but ``seed`` last; ``output_dir`` never."""
    order: dict[str, None] = {}
    first: dict[str, str] = {}
    differs: set[str] = set()
    seen = 0
    for config in configs:
        for name in config:
            order.setdefault(name, None)
        for name in order:
            value = _canonical(config[name]) if name in config else _ABSENT
            if name not in first:
                first[name] = _ABSENT if seen else value
            if value != first[name]:
                differs.add(name)
        seen += 1
    found = [name for name in order if name in differs and name not in PER_CASE and name != SEED]
    return found + [SEED] * (SEED in differs)


def shown_value(config: Mapping[str, Any], name: str) -> str:
    """A field's value as a table cell: strings and numbers as written, the rest as JSON."""
    if name not in config:
        return "(absent)"
    value = config[name]
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return repr(value)
    return _json(value)


def params_by_case(configs: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """Each case's values of the fields that differ between the cases (variant -> field -> cell)."""
    fields = varying_fields(configs.values())
    return {variant: {name: shown_value(config, name) for name in fields} for variant, config in configs.items()}


def condition_key(config: Mapping[str, Any], fields: Sequence[str]) -> tuple[str, ...]:
    """What identifies a condition: its values of ``fields`` (the seed left out by the caller)."""
    return tuple(_canonical(config[name]) if name in config else _ABSENT for name in fields)


def seed_of(config: Mapping[str, Any]) -> Any:
    return config.get(SEED)


def label_of(names: Sequence[str]) -> str:
    """A row's name for the variants of one condition: the one name, or their common
    start, less a partial number, and ``*`` (``deg3_seed*`` for ``deg3_seed0`` .. ``deg3_seed2``,
    ``T0/00/run_*`` for ``T0/00/run_01`` .. ``T0/00/run_03``)."""
    unique = list(dict.fromkeys(names))
    if len(unique) == 1:
        return unique[0]
    prefix = unique[0]
    for name in unique[1:]:
        while not name.startswith(prefix):
            prefix = prefix[:-1]
    prefix = prefix.rstrip("0123456789")
    return f"{prefix}*" if prefix else f"{unique[0]} (+{len(unique) - 1})"


@dataclass
class Condition:
    """Cases of one run that differ only in their seed: their names, seeds and each
    completed case's metrics (seed -> value), per metric."""

    key: tuple[str, ...]
    params: dict[str, str]
    variants: list[str] = field(default_factory=list)
    seeds: list[Any] = field(default_factory=list)
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> {seed (canonical): value}

    @property
    def label(self) -> str:
        return label_of(self.variants)

    def summary(self, metric: str) -> Summary | None:
        found = self.values.get(metric)
        return summarize(list(found.values())) if found else None


def group_by_condition(
    cases: Iterable[tuple[str, Mapping[str, Any], Mapping[str, float] | None]], fields: Sequence[str]
) -> dict[tuple[str, ...], Condition]:
    """``(variant, config, metrics or None)`` grouped by ``condition_key`` over ``fields``
    (which should not hold the seed), in the order the conditions first appear. A case with
    no metrics (not completed) is counted as a variant and contributes no value; a seed
    seen twice in one condition keeps its first value."""
    groups: dict[tuple[str, ...], Condition] = {}
    for variant, config, metrics in cases:
        key = condition_key(config, fields)
        group = groups.get(key)
        if group is None:
            group = groups[key] = Condition(key, {name: shown_value(config, name) for name in fields})
        seed = _canonical(seed_of(config))
        group.variants.append(variant)
        group.seeds.append(seed_of(config))
        for metric, value in (metrics or {}).items():
            group.values.setdefault(metric, {}).setdefault(seed, value)
    return groups
