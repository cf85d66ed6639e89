"""A flow run's final state as the Prefect server holds it (what the UI's run list shows)."""

from __future__ import annotations

from typing import Any


def state_on_server(local_state: Any) -> Any:
    """The state the server recorded for the flow run ``local_state`` (returned with ``return_state=True``) ended in."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_flow_run(local_state.state_details.flow_run_id).state


def task_states_on_server(local_state: Any) -> dict[str, tuple[str, str]]:
    """Task run name -> (state type, message) of the flow run's task runs, read from the server."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[local_state.state_details.flow_run_id]))
        )
    return {r.name: (r.state.type.value, r.state.message or "") for r in runs}
