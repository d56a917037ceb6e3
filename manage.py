#!/usr/bin/env python
"""Django's command-line utility for FineFoundry Storage."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finefoundry.settings")
    from django.core.management import execute_from_command_line

    from storage.db.files import UnusableDatabase

    try:
        execute_from_command_line(sys.argv)
    except UnusableDatabase as exc:
        # A sentence the user can act on, not a traceback.
        sys.stderr.write(f"Error: {exc}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
