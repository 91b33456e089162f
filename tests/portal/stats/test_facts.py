"""The fact table follows every tip through storing, status changes and hand-over, in the same
transaction, and keeps its rows when the tip itself is deleted (issue 5: aggregates survive retention)."""

from __future__ import annotations

import datetime
import re
from typing import Any

from sqlalchemy import inspect, text
from sqlmodel import Session, select
from starlette.testclient import TestClient

from portal import db
from portal.db import session_scope
from portal.network.models import Desk
from portal.stats import figures
from portal.stats.models import TipFact
from portal.web import Services
from tests.portal.stats.facts import facts_of, set_status, tip_by_case
from tests.portal.submission.browser import ANSWERS, form_token, send_tip
from tests.portal.triage.test_handover import desk_with_officer
from tests.portal.triage.test_staff_flow import account, staff_login, tip_desks

TODAY = datetime.datetime.now(datetime.UTC).date()


def test_the_fact_table_holds_no_content(services: Services) -> None:
    columns = {c["name"] for c in inspect(services.engine).get_columns("tipfact")}
    assert columns == {
        "id", "tip_id", "desk_id", "reason", "counts_tip", "received_on", "category", "municipality_id",
        "taken_by_phone", "acknowledged_on", "closed_on", "outcome",
    }  # fmt: skip


def test_a_stored_tip_has_one_fact_per_desk_and_counts_once(client: TestClient, services: Services) -> None:
    _code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "environment"}, [])
    tip = tip_by_case(services.engine, case_number)
    facts = facts_of(services.engine, tip.id)
    desks = tip_desks(services, case_number)
    assert len(facts) == len(desks) >= 1
    assert [f.counts_tip for f in facts].count(True) == 1
    for fact in facts:
        assert (fact.received_on, fact.category, fact.municipality_id) == (
            TODAY,
            "environment",
            tip.municipality_id,
        )
        assert (fact.reason, fact.taken_by_phone, fact.acknowledged_on, fact.closed_on, fact.outcome) == (
            "routing",
            False,
            None,
            None,
            None,
        )


def test_an_automatic_acknowledgement_is_a_fact_from_the_start(
    client: TestClient, services: Services
) -> None:
    # "other" goes to the joint desk, which acknowledges every tip at once (portal.demo).
    _code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [])
    facts = facts_of(services.engine, tip_by_case(services.engine, case_number).id)
    assert facts and all(f.acknowledged_on == TODAY for f in facts)


def test_status_changes_follow_on_every_fact(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    _code, case_number = send_tip(client, "sv", ANSWERS, [])
    tip = tip_by_case(services.engine, case_number)
    staff_login(client, account(demo_accounts, desk=tip_desks(services, case_number)[0]))

    set_status(client, tip.id, "in-progress")
    assert [(f.acknowledged_on, f.closed_on, f.outcome) for f in facts_of(services.engine, tip.id)] == [
        (TODAY, None, None)
    ] * len(tip_desks(services, case_number))

    set_status(client, tip.id, "closed", "unfounded")
    assert {(f.acknowledged_on, f.closed_on, f.outcome) for f in facts_of(services.engine, tip.id)} == {
        (TODAY, TODAY, "unfounded")
    }

    # Reopened: no longer closed, still acknowledged.
    set_status(client, tip.id, "in-progress")
    assert {(f.acknowledged_on, f.closed_on, f.outcome) for f in facts_of(services.engine, tip.id)} == {
        (TODAY, None, None)
    }


def test_a_hand_over_adds_a_fact_that_does_not_count_the_tip_again(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    _code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [])
    original = tip_desks(services, case_number)
    tip = tip_by_case(services.engine, case_number)
    target_code, _officer = desk_with_officer(demo_accounts, original)
    with session_scope(services.engine) as session:
        target = session.exec(select(Desk).where(Desk.code == target_code)).one()
    staff_login(client, account(demo_accounts, desk=original[0]))
    page = client.get(f"/staff/tips/{tip.id}")
    client.post(
        f"/staff/tips/{tip.id}/handover",
        data={
            "desk": str(target.id),
            "basis": "legal-basis",
            "legal_basis": "OSL 10 kap. 2 §",
            "csrf": form_token(page.text, f"/staff/tips/{tip.id}/handover"),
        },
    )
    facts = facts_of(services.engine, tip.id)
    assert len(facts) == len(original) + 1
    handed = next(f for f in facts if f.desk_id == target.id)
    assert (handed.reason, handed.counts_tip, handed.received_on) == ("legal-basis", False, TODAY)
    assert [f.counts_tip for f in facts].count(True) == 1


def test_a_tip_taken_by_phone_is_counted_as_such(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    staff_login(client, account(demo_accounts, role="officer"))
    form = client.get("/staff/intake")
    done = client.post(
        "/staff/intake", data={**ANSWERS, "language": "sv", "csrf": form_token(form.text, "/staff/intake")}
    )
    assert done.status_code == 200, done.text
    case_number = re.search(r'id="case-number"[^>]*>([^<]+)<', done.text)
    assert case_number
    facts = facts_of(services.engine, tip_by_case(services.engine, case_number.group(1).strip()).id)
    assert facts and all(f.taken_by_phone for f in facts)


def test_deleting_the_tip_keeps_its_facts_and_the_counts(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    for category in ("drugs", "drugs", "weapons"):
        send_tip(client, "sv", {**ANSWERS, "category": category}, [])
    quarter = figures.Quarter.of(TODAY)
    with Session(services.engine) as session:
        before = figures.staff_report(session, quarter)
        tip_ids = [t for t in session.exec(select(TipFact.tip_id)).all() if t is not None]
    facts_before = len(facts_of(services.engine))
    # What retention's purge does to the tip rows, in plain SQL: the tip goes, whatever hangs on it.
    with session_scope(services.engine) as session:
        for tip_id in set(tip_ids):
            session.execute(text("DELETE FROM tip WHERE id = :id"), {"id": tip_id})
    after_facts = facts_of(services.engine)
    assert len(after_facts) == facts_before
    assert all(f.tip_id is None for f in after_facts)
    with Session(services.engine) as session:
        assert figures.staff_report(session, quarter) == before


def test_the_migration_backfills_the_facts_of_existing_tips(
    client: TestClient, services: Services, database_url: str
) -> None:
    for category in ("drugs", "other", "tax"):
        send_tip(client, "sv", {**ANSWERS, "category": category}, [])
    kept = [(f.tip_id, f.desk_id, f.reason, f.counts_tip, f.received_on, f.category, f.acknowledged_on)
            for f in facts_of(services.engine)]  # fmt: skip
    services.engine.dispose()
    _downgrade(database_url, "0005")
    db.upgrade(database_url)
    rebuilt = [(f.tip_id, f.desk_id, f.reason, f.counts_tip, f.received_on, f.category, f.acknowledged_on)
               for f in facts_of(services.engine)]  # fmt: skip
    assert sorted(rebuilt, key=repr) == sorted(kept, key=repr)
    assert len(kept) >= 3


def _downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(db.alembic_config(url), revision)
