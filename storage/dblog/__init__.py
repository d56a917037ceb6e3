"""The logging handler that stores records in app_logs: handler, background writer, stores."""
