"""Example suite: how polynomial degree and noise trade off in a least-squares fit.

    python flows/run_suite.py experiments/sweep/suite_sweep.py [--dry-run] [-p N] [--resume RUN_DIR]
    python experiments/sweep/suite_sweep.py [same flags]

Runs offline in seconds: 8 cases, each a fresh ``python fit.py --field=value ...``.
"""

from sweep_config import SweepConfig, Target

from experiment_infra import ExperimentCase, run_experiments_cli

# Optional run settings, read from module level (or passed to run_experiments_cli):
retries = 1
retry_delay_seconds = 2.0
timeout_seconds = 120.0

base = SweepConfig(n_train=30)
cases = [
    ExperimentCase(f"{target.value}_deg{degree}_noise{noise}", base.copy_with(target=target, degree=degree, noise=noise))
    for target in (Target.SINE, Target.ABS)
    for degree in (1, 3, 7)
    for noise in (0.05, 0.3)
    if not (target is Target.ABS and noise == 0.05)
]
# Degree 7 on 30 noisy points overfits; a ridge penalty shows the cure.
cases.append(ExperimentCase("sine_deg7_noise0.3_ridge", base.copy_with(degree=7, noise=0.3, ridge=1e-2)))

if __name__ == "__main__":
    run_experiments_cli(cases, entry_point="fit.py", experiment_name="sweep")
