"""Prefect tasks: thin wrappers, one external step each, around the library."""
