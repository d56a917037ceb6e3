"""Background jobs: the Tasks API (tasks.py), job kinds (registry.py, kinds.py), the task running them (runner.py)."""
