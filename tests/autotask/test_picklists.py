"""Tests for picklist resolution over a real-shaped Tickets field metadata answer."""

import pytest

from s1_autotask.autotask import AutotaskError, PicklistError, Picklists


@pytest.fixture
def picklists(ticket_fields):
    return Picklists.from_fields(ticket_fields)


def picklist_field(name, values, parent_field=""):
    return {
        "name": name,
        "dataType": "integer",
        "length": 0,
        "isRequired": False,
        "isReadOnly": False,
        "isQueryable": True,
        "isReference": False,
        "referenceEntityType": "",
        "isPickList": True,
        "picklistValues": values,
        "picklistParentValueField": parent_field,
        "isSupportedWebhookField": False,
    }


def picklist_value(value, label, parent="", active=True):
    return {
        "value": value,
        "label": label,
        "isDefaultValue": False,
        "sortOrder": 0,
        "parentValue": parent,
        "isActive": active,
        "isSystem": False,
    }


class TestResolve:
    """Labels resolve to tenant ids, ignoring case and spaces, active values only."""

    def test_label_and_field_name_match_ignoring_case_and_spaces(self, picklists):
        assert picklists.resolve("STATUS", "  in progress ") == 8
        assert picklists.resolve("QueueId", "security operations") == 29683490

    def test_same_label_in_two_picklists_resolves_per_field(self, picklists):
        assert picklists.resolve("queueID", "Monitoring Alert") == 29683482
        assert picklists.resolve("source", "Monitoring Alert") == 6

    def test_inactive_value_is_not_resolved(self, picklists):
        with pytest.raises(PicklistError) as caught:
            picklists.resolve("queueID", "Retired Queue")

        assert caught.value.field == "queueID"
        assert caught.value.label == "Retired Queue"
        assert "Retired Queue" not in caught.value.available
        assert str(caught.value) == (
            "In Autotask picklist queueID, no active value is labelled "
            "'Retired Queue'. Available: Client Portal, Level I Support, "
            "Monitoring Alert, Security Operations."
        )

    def test_sub_issue_type_is_chosen_under_its_issue_type(self, picklists):
        issue_type = picklists.resolve("issueType", "Security Incident")

        sub_issue_type = picklists.resolve(
            "subIssueType", "malware detected", parent_value=issue_type
        )

        assert (issue_type, sub_issue_type) == (10, 136)

    def test_sub_issue_type_of_another_issue_type_is_refused(self, picklists):
        with pytest.raises(PicklistError) as caught:
            picklists.resolve("subIssueType", "Malware Detected", parent_value="2")

        assert caught.value.parent_value == "2"
        assert caught.value.available == ["Rapid Response", "Hardware Request"]
        assert "under issueType=2" in str(caught.value)

    def test_inactive_sub_issue_type_is_refused(self, picklists):
        with pytest.raises(PicklistError, match="'Ransomware'"):
            picklists.resolve("subIssueType", "Ransomware", parent_value=10)

    def test_unique_sub_issue_label_resolves_without_a_parent(self, picklists):
        assert picklists.resolve("subIssueType", "Suspicious Activity") == 137

    def test_label_shared_by_two_parents_needs_the_parent(self):
        picklists = Picklists.from_fields(
            [
                picklist_field(
                    "subIssueType",
                    [
                        picklist_value("21", "Other", parent="2"),
                        picklist_value("31", "Other", parent="10"),
                    ],
                    parent_field="IssueType",
                )
            ]
        )

        with pytest.raises(PicklistError, match="several active values"):
            picklists.resolve("subIssueType", "Other")
        assert picklists.resolve("subIssueType", "Other", parent_value=10) == 31

    def test_parent_for_an_independent_picklist_is_refused(self, picklists):
        with pytest.raises(PicklistError, match="does not depend on a parent"):
            picklists.resolve("priority", "High", parent_value=10)

    @pytest.mark.parametrize(
        ("field", "problem"),
        [("severity", "is not a known field"), ("title", "is not a picklist")],
    )
    def test_unknown_or_plain_field_is_refused_listing_picklists(
        self, picklists, field, problem
    ):
        with pytest.raises(PicklistError, match=problem) as caught:
            picklists.resolve(field, "High")

        assert isinstance(caught.value, AutotaskError)
        assert "priority" in caught.value.available
        assert "title" not in caught.value.available

    def test_error_lists_at_most_twenty_labels(self):
        values = [picklist_value(str(n), f"Queue {n:02d}") for n in range(30)]
        picklists = Picklists.from_fields([picklist_field("queueID", values)])

        with pytest.raises(PicklistError) as caught:
            picklists.resolve("queueID", "Queue 99")

        assert len(caught.value.available) == 30
        assert "Queue 19 (and 10 more)." in str(caught.value)
        assert "Queue 20" not in str(caught.value)

    def test_integer_values_in_metadata_are_accepted(self):
        picklists = Picklists.from_fields(
            [picklist_field("status", [picklist_value(1, "New")])]
        )

        assert picklists.resolve("status", "new") == 1


class TestLabels:
    """Labels are listed in Autotask's display order, active ones only."""

    def test_labels_follow_sort_order(self, picklists):
        assert picklists.labels("priority") == ["Critical", "High", "Medium", "Low"]

    def test_labels_leave_out_inactive_values(self, picklists):
        assert "Standard (non-editable)" not in picklists.labels("ticketCategory")

    def test_labels_can_be_limited_to_a_parent(self, picklists):
        labels = picklists.labels("subIssueType", parent_value=10)

        assert labels == ["Malware Detected", "Suspicious Activity"]


class TestDefaultAndLabelOf:
    """Defaults and reverse lookups read the same metadata."""

    @pytest.mark.parametrize(
        ("field", "expected"),
        [("priority", 2), ("status", 1), ("ticketCategory", 3), ("queueID", None)],
    )
    def test_default_is_the_active_default_value(self, picklists, field, expected):
        assert picklists.default(field) == expected

    def test_label_of_includes_inactive_values(self, picklists):
        assert picklists.label_of("ticketCategory", 5) == "Standard (non-editable)"
        assert picklists.label_of("queueID", "29683482") == "Monitoring Alert"

    def test_label_of_an_unknown_value_is_none(self, picklists):
        assert picklists.label_of("status", 999) is None


class TestField:
    """Field metadata is available for validation, by case-insensitive name."""

    def test_field_reports_required_flag_and_length(self, picklists):
        title = picklists.field("TITLE")

        assert title is not None
        assert (title.name, title.is_required, title.length) == ("title", True, 255)

    def test_field_reports_the_parent_picklist(self, picklists):
        sub_issue_type = picklists.field("subissuetype")

        assert sub_issue_type is not None
        assert sub_issue_type.parent_field == "issueType"
        assert sub_issue_type.is_picklist

    def test_unknown_field_is_none(self, picklists):
        assert picklists.field("severity") is None
