"""A tiny training grid on ``digits`` (seconds per run on a CPU), for the grid tests."""

#: The grid file's ``base``: every run's settings but its method.
TINY_BASE = {"dataset": "digits", "arch": "cnn001", "train_subset": 48, "epochs": 1, "batch_size": 16,
             "optimizer": "adam", "lr": 1e-3, "device": "cpu", "num_threads": 1, "monitor_size": 8,
             "monitor_steps": 1, "evaluation": {"subset": 8, "attacks": ["pgd"], "lipschitz": ["ascent"]}}
#: Its two runs: a natural one and one with a method parameter.
TINY_RUNS = [{"method": "natural"}, {"method": "rst", "method_params": {"lambda": 0.5, "steps": 1}}]
