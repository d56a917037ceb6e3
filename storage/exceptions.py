"""Errors raised by storage services; each is a ValueError so FineFoundry callers can catch one type."""

from __future__ import annotations


class StorageError(ValueError):
    """Base class: the operation was refused and nothing was written."""


class InvalidInput(StorageError):
    """An argument has the wrong type or value."""


class NotFound(StorageError):
    """A record that the operation needs does not exist."""


class InvalidTransition(StorageError):
    """A training run cannot move from its status to the requested one."""


class UnsafePath(StorageError):
    """A path points outside the managed storage root, at the root itself, or through a symlink."""
