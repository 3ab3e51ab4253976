"""Pick the Autotask company that a SentinelOne threat belongs to, and say why.

A ticket in the wrong company is a security detail shown to the wrong client, so every
step prefers refusing over guessing: an explicit map first, then an exact name, then a
normalised name, then a fuzzy name only when it is both close and unambiguous, then
the configured fallback company. Each choice carries a one-line reason. Companies that
match a name equally well are never chosen between; the reason names them instead.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from rapidfuzz import fuzz, process

from s1_autotask.text import clean, quoted

MatchKind = Literal["explicit", "exact", "normalised", "fuzzy", "fallback"]

# Words that distinguish legal entities but not clients; "Example Site Ltd" and
# "Example Site" name the same customer in an MSP's books.
_LEGAL_SUFFIXES = frozenset(
    {"ltd", "limited", "inc", "llc", "llp", "gmbh", "ag", "co", "corp", "plc", "sa"}
)
_NON_WORD = re.compile(r"[^\w]+")
# How far ahead of the runner-up a fuzzy match must score to count as unambiguous.
_FUZZY_MARGIN = 10.0
# Tied companies named in a reason or error; the rest are counted.
_TIES_SHOWN = 3


class CompanyMappingError(LookupError):
    """No Autotask company could be chosen for a threat, and no fallback is set."""


class CompanyMatch(BaseModel):
    """The company chosen for a threat and how it was chosen."""

    model_config = ConfigDict(frozen=True)

    id: int
    name: str
    match: MatchKind
    reason: str
    score: float | None = None


class SiteIdentity(BaseModel):
    """The SentinelOne names a company can be found by, most specific first."""

    model_config = ConfigDict(frozen=True)

    site_id: str | None = None
    site_name: str | None = None
    account_id: str | None = None
    account_name: str | None = None

    def keys(self) -> list[tuple[str, str]]:
        """(label, value) pairs in the order they are tried."""
        pairs = [
            ("site id", self.site_id),
            ("site name", self.site_name),
            ("account id", self.account_id),
            ("account name", self.account_name),
        ]
        return [(label, value) for label, value in pairs if value]

    def names(self) -> list[tuple[str, str]]:
        """(label, name) pairs usable for name matching."""
        pairs = [("site name", self.site_name), ("account name", self.account_name)]
        return [(label, value) for label, value in pairs if value]

    def describe(self) -> str:
        """A short description for error messages; empty without site and account."""
        return ", ".join(f"{label} {quoted(value)}" for label, value in self.keys())


@dataclass(frozen=True, slots=True)
class _Tie:
    """Several companies matched one name equally well, so none was chosen."""

    label: str
    name: str
    how: str
    companies: list[tuple[int, str]]

    def describe(self) -> str:
        shown = ", ".join(
            f"{clean(cname, 80)} ({cid})" for cid, cname in self.companies[:_TIES_SHOWN]
        )
        more = len(self.companies) - _TIES_SHOWN
        if more > 0:
            shown += f" and {more} more"
        return (
            f"{len(self.companies)} companies match {self.label} {quoted(self.name)} "
            f"{self.how}: {shown}"
        )


def normalise_name(name: str) -> str:
    """Fold case, accents, punctuation and legal suffixes out of a company name."""
    decomposed = unicodedata.normalize("NFKD", name)
    ascii_only = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = _NON_WORD.sub(" ", ascii_only.casefold()).split()
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def map_company(
    identity: SiteIdentity,
    companies: Iterable[Mapping[str, Any]],
    *,
    explicit: Mapping[str, int] | None = None,
    fallback_company_id: int | None = None,
    fuzzy_threshold: float = 90.0,
) -> CompanyMatch:
    """Choose the company for a threat's site and account.

    Raises:
        CompanyMappingError: nothing matched and no fallback company is configured.
    """
    active = _active_companies(companies)
    by_id = {company_id: name for company_id, name in active}

    # The first tie found is the most specific: it names the key worth mapping.
    ties: list[_Tie] = []
    found = (
        _explicit_match(identity, explicit or {}, by_id)
        or _exact_match(identity, active, ties)
        or _normalised_match(identity, active, ties)
        or _fuzzy_match(identity, active, fuzzy_threshold, ties)
    )
    if found is not None:
        return found

    why = _why_unmatched(identity, ties[0] if ties else None)
    if fallback_company_id is not None and fallback_company_id in by_id:
        return CompanyMatch(
            id=fallback_company_id,
            name=by_id[fallback_company_id],
            match="fallback",
            reason=f"{why}; using the fallback company",
        )

    msg = (
        f"No Autotask company can be chosen: {why}. No usable fallback company is "
        "configured either (S1AT_MAPPING__COMPANIES maps sites to companies; "
        "S1AT_MAPPING__FALLBACK_COMPANY_ID names a catch-all)."
    )
    if fallback_company_id is not None:
        msg += f" The fallback company {fallback_company_id} is missing or inactive."
    raise CompanyMappingError(msg)


def _why_unmatched(identity: SiteIdentity, tie: _Tie | None) -> str:
    if tie is not None:
        # The site id is the steadiest key to map: names get edited, ids do not.
        label, value = identity.keys()[0]
        return (
            f"{tie.describe()}; add {label} {quoted(value)} to S1AT_MAPPING__COMPANIES"
        )
    described = identity.describe()
    if not described:
        return "the threat names no site or account"
    return f"no company matched {described}"


def _active_companies(companies: Iterable[Mapping[str, Any]]) -> list[tuple[int, str]]:
    active = []
    for company in companies:
        if company.get("isActive") is False:
            continue
        company_id, name = company.get("id"), company.get("companyName")
        if isinstance(company_id, int) and isinstance(name, str) and name.strip():
            active.append((company_id, name))
    return active


def _explicit_match(
    identity: SiteIdentity, explicit: Mapping[str, int], by_id: Mapping[int, str]
) -> CompanyMatch | None:
    folded = {key.casefold().strip(): value for key, value in explicit.items()}
    for label, value in identity.keys():
        company_id = folded.get(value.casefold().strip())
        if company_id is None:
            continue
        if company_id not in by_id:
            msg = (
                f"The configured company {company_id} for {label} {quoted(value)} "
                "is not an active Autotask company."
            )
            raise CompanyMappingError(msg)
        reason = f"{label} {quoted(value)} is mapped to this company by configuration"
        return CompanyMatch(
            id=company_id, name=by_id[company_id], match="explicit", reason=reason
        )
    return None


def _exact_match(
    identity: SiteIdentity, active: list[tuple[int, str]], ties: list[_Tie]
) -> CompanyMatch | None:
    for label, name in identity.names():
        wanted = _fold(name)
        hits = [(cid, cname) for cid, cname in active if _fold(cname) == wanted]
        if len(hits) == 1:
            cid, cname = hits[0]
            reason = f"{label} {quoted(name)} equals the company name"
            return CompanyMatch(id=cid, name=cname, match="exact", reason=reason)
        if hits:
            ties.append(_Tie(label, name, "exactly", hits))
    return None


def _normalised_match(
    identity: SiteIdentity, active: list[tuple[int, str]], ties: list[_Tie]
) -> CompanyMatch | None:
    for label, name in identity.names():
        wanted = normalise_name(name)
        hits = [
            (cid, cname) for cid, cname in active if normalise_name(cname) == wanted
        ]
        if len(hits) == 1:
            cid, cname = hits[0]
            reason = f"{label} {quoted(name)} equals the company name once normalised"
            return CompanyMatch(id=cid, name=cname, match="normalised", reason=reason)
        if hits:
            ties.append(_Tie(label, name, "equally after normalising", hits))
    return None


def _fuzzy_match(
    identity: SiteIdentity,
    active: list[tuple[int, str]],
    threshold: float,
    ties: list[_Tie],
) -> CompanyMatch | None:
    if threshold <= 0 or not active:
        return None
    choices = [normalise_name(cname) for _, cname in active]
    for label, name in identity.names():
        best = process.extract(
            normalise_name(name),
            choices,
            scorer=fuzz.token_sort_ratio,
            limit=None,
            score_cutoff=max(threshold - _FUZZY_MARGIN, 0),
        )
        if not best or best[0][1] < threshold:
            continue
        # A runner-up almost as close means the name is ambiguous: refuse to guess.
        close = [hit for hit in best if best[0][1] - hit[1] < _FUZZY_MARGIN]
        if len(close) > 1:
            scores = "/".join(f"{round(hit[1], 1):g}" for hit in close[:_TIES_SHOWN])
            how = f"about equally closely (scores {scores})"
            ties.append(_Tie(label, name, how, [active[hit[2]] for hit in close]))
            continue
        cid, cname = active[best[0][2]]
        score = round(best[0][1], 1)
        reason = f"{label} {quoted(name)} is close to the company name (score {score})"
        return CompanyMatch(
            id=cid, name=cname, match="fuzzy", reason=reason, score=score
        )
    return None


def _fold(name: str) -> str:
    return " ".join(name.casefold().split())
