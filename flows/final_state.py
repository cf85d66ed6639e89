"""The final state of a flow run, said the same way in every mode (standard, inspect,
agent evaluation, recovery, nightly): ``Completed`` when nothing failed, else ``Failed``
whose message says what did not succeed and why. The files decide; the state is
their summary, so a person reading the flow run list sees a failure as a failure.
"""

from __future__ import annotations

from typing import Any, Sequence

from prefect.states import Completed, Failed, State

MAX_REASONS = 5  # reasons a state message names one by one; the summary and artifacts list them all


def listed(reasons: Sequence[str], limit: int = MAX_REASONS) -> str:
    """The first ``limit`` reasons, then how many more."""
    more = f"; and {len(reasons) - limit} more" if len(reasons) > limit else ""
    return "; ".join(reasons[:limit]) + more


def final_state(data: Any, *, done: str, headline: str, reasons: Sequence[str]) -> State:
    """``Completed(done)`` when ``reasons`` is empty; else ``Failed("headline: reason; ...")``.
    ``data`` (the flow's summary) is the state's result either way."""
    if not reasons:
        return Completed(message=done, data=data)
    return Failed(message=f"{headline}: {listed(reasons)}", data=data)
