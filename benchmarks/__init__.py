"""logo-batch benchmarks: each figure measured against its baseline in the same run."""
