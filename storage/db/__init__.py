"""The SQLite file: its Django backend, the checks made before opening it, and the desktop schema."""
