"""Temporary: the names recovery_cli still takes from here now live in experiment_cli.common."""

from experiment_cli.common import BAD_INPUT, add_dask_options, check_services  # noqa: F401
