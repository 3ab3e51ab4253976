"""Prefect flows: the threat-to-ticket graph, and the ways threats reach it."""
