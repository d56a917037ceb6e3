"""What tests share: subprocesses (manage.py, workers), dataset and log helpers."""
