"""The command line's one error type: a problem with the user's input, not a bug."""

from __future__ import annotations


class UsageError(Exception):
    """A problem with the user's input: printed as ``jaxbp <command>: error: <message>``, exit 2."""
