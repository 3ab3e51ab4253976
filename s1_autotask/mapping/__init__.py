"""Mapping SentinelOne scope onto Autotask: which company a threat belongs to."""

from s1_autotask.mapping.company import (
    CompanyMappingError,
    CompanyMatch,
    SiteIdentity,
    map_company,
    normalise_name,
)

__all__ = [
    "CompanyMappingError",
    "CompanyMatch",
    "SiteIdentity",
    "map_company",
    "normalise_name",
]
