"""The coding logic: the classification, claim edits, search and analysis, as plain functions."""

from coding import native

native.check()
