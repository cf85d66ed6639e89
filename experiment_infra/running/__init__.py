"""Running a case: one attempt of one standard-mode case in a fresh subprocess (``runner``)
with the waiter beside it that records its end (``case_waiter``, forked by one
``waiter_server`` per runner process), its output streamed
(``streaming``), the GPUs and CPUs it is granted (``resources``; on Dask workers:
``worker_devices``), an Inspect AI eval as a case (``inspect_mode``), and the services a
run depends on (``services``, ``slurm``; ``slurm_job``: whether Slurm is ending the job a
case runs in), the failure budget after which no new case starts (``budget``), and an
attempt whose Dask worker went away under it, waited for or recorded lost (``lost_attempt``).
Nothing here imports Prefect.

May import: files, layout, processes, provenance, records, status, suites
"""
