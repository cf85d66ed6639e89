"""``ExperimentCase``: one condition of a suite (a variant name and its config)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Iterable

from .config import BaseExperimentConfig, ConfigError
from ..layout import check_name
from ..running.resources import check_gpu_request


@dataclass(frozen=True)
class ExperimentCase:
    """A named config; the name becomes the case's directory and its Prefect task name.

    ``gpus`` and ``cpus`` (keywords; the spec's two-argument shape is unchanged): what this
    case needs while it runs, overriding the suite's ``gpus`` / ``cpus``. ``gpus`` may be
    a fraction of one device (``0.5``: two such cases share one) or a whole number.
    """

    variant_name: str
    config: BaseExperimentConfig
    gpus: float | None = None
    cpus: int | None = None

    def __post_init__(self) -> None:
        check_name("variant", self.variant_name)
        if not isinstance(self.config, BaseExperimentConfig):
            raise ConfigError(
                f"case {self.variant_name!r}: config must be a BaseExperimentConfig, "
                f"got {type(self.config).__name__}"
            )
        if self.config.assigned_output_dir:
            raise ConfigError(
                f"case {self.variant_name!r}: output_dir is set by the runner; remove it from the suite"
            )
        where = f"case {self.variant_name!r}"
        if self.gpus is not None:
            check_gpu_request(self.gpus, where)
        if self.cpus is not None and (isinstance(self.cpus, bool) or not isinstance(self.cpus, int) or self.cpus < 1):
            raise ConfigError(f"{where}: cpus must be a whole number >= 1, got {self.cpus!r}")


def validate_cases(cases: Iterable[object], *, source: str = "suite") -> list[ExperimentCase]:
    """Check a suite's cases before anything runs: types, at least one, unique names."""
    cases = list(cases)
    if not cases:
        raise ConfigError(f"{source}: no cases (define a non-empty module-level `cases` list)")
    for i, case in enumerate(cases):
        if not isinstance(case, ExperimentCase):
            raise ConfigError(f"{source}: cases[{i}] is a {type(case).__name__}, not an ExperimentCase")
    dupes = sorted(n for n, k in Counter(c.variant_name for c in cases).items() if k > 1)  # type: ignore[union-attr]
    if dupes:
        raise ConfigError(f"{source}: duplicate variant name(s) {', '.join(dupes)}; each case needs its own")
    return cases  # type: ignore[return-value]
