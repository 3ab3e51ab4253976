"""Tests for choosing the Autotask company of a threat."""

import pytest

from s1_autotask.mapping import (
    CompanyMappingError,
    SiteIdentity,
    map_company,
    normalise_name,
)

COMPANIES = [
    {"id": 0, "companyName": "Emulated MSP (internal)", "isActive": True},
    {"id": 101, "companyName": "Example Site", "isActive": True},
    {"id": 102, "companyName": "Contoso Dental Group, LLC", "isActive": True},
    {"id": 103, "companyName": "Fabrikam Logistics", "isActive": False},
    {"id": 104, "companyName": "Northwind Traders Ltd", "isActive": True},
    {"id": 105, "companyName": "Northwind Trading", "isActive": True},
]

# "Example Site" and "Example Site Ltd" normalise to the same name.
TIED = [
    {"id": 0, "companyName": "Emulated MSP (internal)", "isActive": True},
    {"id": 101, "companyName": "Example Site", "isActive": True},
    {"id": 102, "companyName": "Example Site Ltd", "isActive": True},
]


class TestMapCompany:
    """map_company picks a company and says why."""

    def test_explicit_site_id_wins_over_a_matching_name(self):
        identity = SiteIdentity(site_id="900", site_name="Example Site")

        match = map_company(identity, COMPANIES, explicit={"900": 104})

        assert (match.id, match.match) == (104, "explicit")
        assert "site id '900'" in match.reason

    def test_explicit_map_keys_ignore_case(self):
        identity = SiteIdentity(site_name="CONTOSO main office")

        match = map_company(identity, COMPANIES, explicit={"contoso Main Office": 102})

        assert match.id == 102

    def test_explicit_map_to_an_inactive_company_is_an_error(self):
        identity = SiteIdentity(site_name="Fabrikam HQ")

        with pytest.raises(CompanyMappingError, match="103 .* not an active"):
            map_company(identity, COMPANIES, explicit={"Fabrikam HQ": 103})

    def test_exact_name_ignores_case_and_spacing(self):
        identity = SiteIdentity(site_name="  example   SITE ")

        match = map_company(identity, COMPANIES)

        assert (match.id, match.match) == (101, "exact")

    def test_normalised_name_drops_punctuation_and_legal_suffix(self):
        identity = SiteIdentity(site_name="Contoso Dental Group")

        match = map_company(identity, COMPANIES)

        assert (match.id, match.match) == (102, "normalised")

    def test_account_name_is_tried_when_the_site_name_matches_nothing(self):
        identity = SiteIdentity(site_name="Default site", account_name="Example Site")

        match = map_company(identity, COMPANIES)

        assert match.id == 101
        assert "account name" in match.reason

    def test_fuzzy_match_accepts_a_typo_far_closer_to_one_name(self):
        identity = SiteIdentity(site_name="Northwind Tradrs")

        match = map_company(identity, COMPANIES)

        assert (match.id, match.match) == (104, "fuzzy")

    def test_fuzzy_match_accepts_a_close_unique_name(self):
        identity = SiteIdentity(site_name="Contoso Dentl Group")

        match = map_company(identity, COMPANIES)

        assert (match.id, match.match) == (102, "fuzzy")
        assert match.score is not None and match.score >= 90

    def test_fuzzy_match_refuses_an_ambiguous_name_and_names_the_candidates(self):
        identity = SiteIdentity(site_name="Northwind Trade")

        match = map_company(identity, COMPANIES, fallback_company_id=0)

        assert match.match == "fallback"
        assert match.reason.startswith(
            "2 companies match site name 'Northwind Trade' about equally closely"
        )
        assert "Northwind Traders Ltd (104), Northwind Trading (105)" in match.reason
        assert "no company matched" not in match.reason

    def test_inactive_companies_are_never_matched_by_name(self):
        identity = SiteIdentity(site_name="Fabrikam Logistics")

        match = map_company(identity, COMPANIES, fallback_company_id=0)

        assert (match.id, match.match) == (0, "fallback")

    def test_no_match_without_fallback_names_the_site_and_the_settings(self):
        identity = SiteIdentity(site_id="77", site_name="Unknown Clinic")

        with pytest.raises(CompanyMappingError) as caught:
            map_company(identity, COMPANIES)

        message = str(caught.value)
        assert "site name 'Unknown Clinic'" in message
        assert "S1AT_MAPPING__FALLBACK_COMPANY_ID" in message

    def test_names_equal_after_normalising_are_a_tie_not_a_miss(self):
        identity = SiteIdentity(site_id="900", site_name="example site, ltd.")

        match = map_company(identity, TIED, fallback_company_id=0)

        assert (match.id, match.match) == (0, "fallback")
        assert match.reason == (
            "2 companies match site name 'example site, ltd.' equally after "
            "normalising: Example Site (101), Example Site Ltd (102); add site id "
            "'900' to S1AT_MAPPING__COMPANIES; using the fallback company"
        )

    def test_a_tie_without_fallback_is_an_error_naming_the_tied_companies(self):
        identity = SiteIdentity(site_name="example site, ltd.")

        with pytest.raises(CompanyMappingError) as caught:
            map_company(identity, TIED)

        message = str(caught.value)
        assert "2 companies match site name 'example site, ltd.' equally" in message
        assert "Example Site (101), Example Site Ltd (102)" in message
        assert "S1AT_MAPPING__FALLBACK_COMPANY_ID" in message

    def test_many_tied_companies_are_named_a_few_and_counted(self):
        companies = [
            {"id": 200 + n, "companyName": f"Acme {suffix}", "isActive": True}
            for n, suffix in enumerate(["Ltd", "LLC", "Inc", "GmbH", "plc"])
        ]

        match = map_company(
            SiteIdentity(site_name="ACME"), companies, fallback_company_id=200
        )

        assert match.match == "fallback"
        assert "5 companies match site name 'ACME' equally" in match.reason
        assert "Acme GmbH" not in match.reason and "and 2 more" in match.reason

    def test_two_companies_with_the_same_name_are_a_tie(self):
        companies = [*COMPANIES, {"id": 106, "companyName": "example site"}]

        match = map_company(
            SiteIdentity(site_name="Example Site"), companies, fallback_company_id=0
        )

        assert match.match == "fallback"
        assert match.reason.startswith(
            "2 companies match site name 'Example Site' exactly: Example Site (101), "
            "example site (106)"
        )

    def test_a_threat_without_site_or_account_says_so(self):
        match = map_company(SiteIdentity(), COMPANIES, fallback_company_id=0)

        assert match.reason == (
            "the threat names no site or account; using the fallback company"
        )
        with pytest.raises(CompanyMappingError, match="the threat names no site"):
            map_company(SiteIdentity(), COMPANIES)

    def test_a_fallback_that_is_not_an_active_company_is_reported(self):
        identity = SiteIdentity(site_name="Unknown Clinic")

        with pytest.raises(CompanyMappingError, match="fallback company 103"):
            map_company(identity, COMPANIES, fallback_company_id=103)


class TestNormaliseName:
    """normalise_name folds away what does not tell clients apart."""

    @pytest.mark.parametrize(
        ("raw", "expected"),
        [
            ("Contoso Dental Group, LLC", "contoso dental group"),
            ("Zürich Café AG", "zurich cafe"),
            ("LTD", "ltd"),
            ("A&B  Co.", "a b"),
        ],
    )
    def test_folds_case_accents_punctuation_and_suffixes(self, raw, expected):
        assert normalise_name(raw) == expected
