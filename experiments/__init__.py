"""Research probes behind docs/experiments.md: each answers one question and prints its
figures (run from the checkout: ``python -m experiments.probe_NAME --help``)."""
