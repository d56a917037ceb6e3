"""Speed measurements against a same-run baseline; run each as `python -m bench.NAME`."""
