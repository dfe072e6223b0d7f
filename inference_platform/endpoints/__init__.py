"""Endpoint families, one package each, as the API serves them.

Each has a ``protocol`` module (request schemas, the OpenAI objects it answers with and their
builders) and a ``serving`` module (what a view calls). ``protocol`` and ``refusals`` here are
shared by every family; ``serving`` here by Chat Completions and Completions.
"""
