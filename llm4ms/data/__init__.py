"""Dataset helpers shared by data_prep scripts, recipes and benchmarks."""
