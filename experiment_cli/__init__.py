"""The command lines: thin entry points over the core (``experiment_infra``) and the flows.

Each command parses its flags, checks its input with the Prefect-free core (bad input
is one ``error: ...`` line), answers ``--dry-run`` from the core alone, and only then
imports Prefect and runs its flow. ``python flows/<name>.py`` and ``python SUITE.py``
land here.
"""
