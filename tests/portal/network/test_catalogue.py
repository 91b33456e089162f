"""The categories and the demo network hang together: every tip has somewhere to go, every code resolves."""

from __future__ import annotations

from collections import Counter

import pytest

from portal.accounts.models import ROLES
from portal.network import catalogue
from portal.network.catalogue import (
    CATEGORIES,
    CATEGORY_CODES,
    DEMO_ACCOUNTS,
    DESKS,
    HOW_KNOWN,
    MUNICIPALITIES,
    ORGANISATION_KINDS,
    ORGANISATIONS,
    POLICE_AREA_FOR_MUNICIPALITY,
    demo_routes,
)

MUNICIPALITY_CODES = {m.code for m in MUNICIPALITIES}
DESK_CODES = {d.code for d in DESKS}
ORGANISATIONS_BY_CODE = {o.code: o for o in ORGANISATIONS}
DESKS_BY_CODE = {d.code: d for d in DESKS}
ROUTES = demo_routes()


def duplicates(codes: list[str]) -> set[str]:
    return {code for code, count in Counter(codes).items() if count > 1}


def test_codes_are_unique() -> None:
    assert duplicates([c.code for c in CATEGORIES]) == set()
    assert duplicates([m.code for m in MUNICIPALITIES]) == set()
    assert duplicates([o.code for o in ORGANISATIONS]) == set()
    assert duplicates([d.code for d in DESKS]) == set()
    assert duplicates([a.username for a in DEMO_ACCOUNTS]) == set()
    assert duplicates([code for code, _ in HOW_KNOWN]) == set()


def test_categories_match_the_domain_table_in_order() -> None:
    assert [c.code for c in CATEGORIES] == [
        "emergency",
        "drugs",
        "weapons",
        "violence",
        "extortion",
        "money-laundering",
        "income-support",
        "assistance",
        "care-providers",
        "state-benefits",
        "population-register",
        "environment",
        "building",
        "labour",
        "tax",
        "corruption",
        "licences",
        "other",
    ]
    assert {c.code for c in CATEGORIES} == CATEGORY_CODES


def test_only_the_first_category_is_an_emergency() -> None:
    assert CATEGORIES[0].code == "emergency" and CATEGORIES[0].emergency
    assert CATEGORIES[-1].code == "other"
    assert [c.code for c in CATEGORIES if c.emergency] == ["emergency"]
    assert "112" in CATEGORIES[0].hint


def test_category_lookup() -> None:
    assert catalogue.category("drugs").name == "Drugs"
    with pytest.raises(KeyError):
        catalogue.category("no-such-category")


@pytest.mark.parametrize("text", [t for c in CATEGORIES for t in (c.name, c.hint)])
def test_wording_never_promises_anonymity(text: str) -> None:
    # JO 1238-2011: no authority may promise anonymity (domain.md, "Law and wording").
    assert "anonym" not in text.lower()
    assert "guarantee" not in text.lower()


def test_every_hint_is_one_sentence() -> None:
    for c in CATEGORIES:
        assert c.hint[-1] in ".?", c.code
        assert c.hint.count(". ") == 0, c.code


def test_finnish_administrative_area() -> None:
    finnish = {m.code for m in MUNICIPALITIES if m.finnish_admin_area}
    assert finnish == {"sodertalje", "eskilstuna", "enkoping"}


def test_every_municipality_has_a_police_area() -> None:
    assert set(POLICE_AREA_FOR_MUNICIPALITY) == MUNICIPALITY_CODES
    for area in POLICE_AREA_FOR_MUNICIPALITY.values():
        assert ORGANISATIONS_BY_CODE[area].kind == "police"


def test_every_desk_belongs_to_an_existing_organisation() -> None:
    for desk in DESKS:
        assert desk.organisation in ORGANISATIONS_BY_CODE, desk.code


def test_every_organisation_has_a_desk_and_a_known_kind() -> None:
    assert {d.organisation for d in DESKS} == set(ORGANISATIONS_BY_CODE)
    assert {o.kind for o in ORGANISATIONS} == ORGANISATION_KINDS


def test_each_municipality_has_its_own_organisation() -> None:
    municipal = [o for o in ORGANISATIONS if o.kind == "municipality"]
    assert len(municipal) == len(MUNICIPALITIES)


def test_routes_reference_existing_desks_municipalities_and_categories() -> None:
    for route in ROUTES:
        assert route.desk in DESK_CODES, route
        assert route.municipality in MUNICIPALITY_CODES, route
        assert route.category in CATEGORY_CODES, route


def test_every_non_emergency_category_has_a_primary_route_in_every_municipality() -> None:
    primaries = {(r.municipality, r.category) for r in ROUTES if r.primary}
    expected = {(m.code, c.code) for m in MUNICIPALITIES for c in CATEGORIES if not c.emergency}
    assert primaries == expected


def test_emergency_has_no_route() -> None:
    assert [r for r in ROUTES if r.category == "emergency"] == []


def test_a_desk_is_routed_once_per_municipality_and_category() -> None:
    # The database enforces this (UniqueConstraint on municipality, category, desk); seeding must not trip it.
    assert duplicates([f"{r.municipality}/{r.category}/{r.desk}" for r in ROUTES]) == set()


def test_police_tips_stay_with_the_municipalitys_own_police_area() -> None:
    for route in ROUTES:
        organisation = ORGANISATIONS_BY_CODE[DESKS_BY_CODE[route.desk].organisation]
        if organisation.kind == "police":
            assert organisation.code == POLICE_AREA_FOR_MUNICIPALITY[route.municipality], route


def test_municipal_desks_only_receive_tips_about_their_own_municipality() -> None:
    own_organisation = {
        "sodertalje": "sodertalje-kommun",
        "nykvarn": "nykvarn-kommun",
        "strangnas": "strangnas-kommun",
        "eskilstuna": "eskilstuna-kommun",
        "enkoping": "enkoping-kommun",
        "vasteras": "vasteras-stad",
    }
    for route in ROUTES:
        organisation = ORGANISATIONS_BY_CODE[DESKS_BY_CODE[route.desk].organisation]
        if organisation.kind == "municipality":
            assert organisation.code == own_organisation[route.municipality], route


def test_not_sure_goes_to_the_joint_triage_desk() -> None:
    for route in ROUTES:
        if route.category == "other":
            assert route.primary
            assert ORGANISATIONS_BY_CODE[DESKS_BY_CODE[route.desk].organisation].kind == "joint"


def test_police_categories_go_to_the_police_first() -> None:
    police_categories = {"drugs", "weapons", "violence", "extortion", "money-laundering"}
    for route in ROUTES:
        if route.primary and route.category in police_categories:
            assert ORGANISATIONS_BY_CODE[DESKS_BY_CODE[route.desk].organisation].kind == "police", route


def test_demo_accounts_have_known_roles_and_existing_desks() -> None:
    for account in DEMO_ACCOUNTS:
        assert account.role in ROLES, account
        assert set(account.desks) <= DESK_CODES, account
        # Administrators and analysts read no tips, so they sit at no desk (DESIGN 1).
        if account.role in {"administrator", "analyst"}:
            assert account.desks == (), account
        else:
            assert account.desks, account
    assert {a.role for a in DEMO_ACCOUNTS} == set(ROLES)
