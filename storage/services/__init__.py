"""The operations on FineFoundry's data, one module per concern; admin, commands and api call these."""
