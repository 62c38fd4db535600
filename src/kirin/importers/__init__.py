"""Bringing existing history into Kirin: each source of history in a module of its own.

Importers are loaded only when used (``import kirin`` stays light): each one
imports its source's client library inside the functions that need it.
"""
