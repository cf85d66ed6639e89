"""Suites and configs: typed experiment configs and their command-line round trip
(``config``, ``config_argv``), a suite's cases (``case``), loading a suite file and planning
a new, resumed or dry run of it (``suite``, ``resume``, ``reuse``, ``identity``,
``plan_text``, ``import_paths``), the one-line load errors (``errors``), what a run would
refuse, checked before Prefect is imported (``preflight``), and what a suite file calls
(``main``: ``run_experiments_cli``).

May import: agent_eval, files, layout, processes, provenance, records, running, status
"""
