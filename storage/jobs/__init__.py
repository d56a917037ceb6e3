"""Background jobs: Django's Tasks API (storage/jobs/tasks.py), the job kinds (registry.py) and the one task that runs them (runner.py)."""
