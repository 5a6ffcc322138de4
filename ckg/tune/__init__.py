"""Search a target's parameters for the Pareto front with Optuna: ``ckg tune``."""
