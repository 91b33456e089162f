"""The inbox reads TipRecipient alone (issue 4): its copies of the tip's values follow every change to the
tip, and filtering, sorting, paging and counting over them give what a reading of the tips themselves gives.
"""

from __future__ import annotations

import datetime
import itertools
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import Engine
from sqlmodel import Session, col, select
from sqlmodel.sql.sqltypes import UTCDateTime
from starlette.testclient import TestClient

import crypto
from portal import db
from portal.accounts.models import StaffAccount
from portal.db import session_scope, utcnow
from portal.network.models import Desk, Municipality, Organisation
from portal.network.services import Recipient
from portal.settings import Settings
from portal.submission import services as tips
from portal.submission.forms import TipAnswers
from portal.submission.models import INBOX_COPIES, Tip, TipRecipient
from portal.submission.uploads import new_id
from portal.triage import services as triage
from portal.triage.models import TipRead
from portal.web import Services
from tests.portal.submission.browser import ANSWERS, form_token, send_tip
from tests.portal.triage.test_staff_flow import account, staff_login, tip_desks

# --- the copies follow the tip ------------------------------------------------------------------------------


def out_of_sync(engine: Engine) -> list[tuple[str, int, str]]:
    """(tip, desk, column) of every copied value on TipRecipient that differs from the tip's own."""
    with db.read_session(engine) as session:
        rows = session.exec(
            select(TipRecipient, Tip).join(Tip, col(Tip.id) == col(TipRecipient.tip_id))
        ).all()
    return [
        (recipient.tip_id, recipient.desk_id, column)
        for recipient, tip in rows
        for column, attribute in INBOX_COPIES.items()
        if getattr(recipient, column) != getattr(tip, attribute)
    ]


def copies_of(engine: Engine, case_number: str) -> dict[int, dict[str, Any]]:
    """Per desk, the copied values on the tip's TipRecipient rows."""
    with db.read_session(engine) as session:
        tip = session.exec(select(Tip).where(Tip.case_number == case_number)).one()
        rows = session.exec(select(TipRecipient).where(TipRecipient.tip_id == tip.id)).all()
    return {row.desk_id: {column: getattr(row, column) for column in INBOX_COPIES} for row in rows}


def tip_of(engine: Engine, case_number: str) -> Tip:
    with db.read_session(engine) as session:
        return session.exec(select(Tip).where(Tip.case_number == case_number)).one()


def set_auto_acknowledge(engine: Engine, on: bool) -> None:
    with session_scope(engine) as session:
        for desk in session.exec(select(Desk)):
            desk.auto_acknowledge = on
            session.add(desk)


def test_the_copies_follow_the_tip_through_its_life(
    client: TestClient, services: Services, demo_accounts: dict[str, Any]
) -> None:
    engine = services.engine
    set_auto_acknowledge(engine, False)
    _code, case_number = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [])
    tip = tip_of(engine, case_number)
    copies = copies_of(engine, case_number)
    assert copies and out_of_sync(engine) == []
    assert {c["tip_status"] for c in copies.values()} == {"new"}
    assert {c["tip_created_at"] for c in copies.values()} == {tip.created_at}

    officer = account(demo_accounts, desk=tip_desks(services, case_number)[0])
    with db.read_session(engine) as session:
        officer_id = session.exec(
            select(StaffAccount.id).where(StaffAccount.username == officer["username"])
        ).one()
    staff_login(client, officer)

    def post(action: str, **data: str) -> None:
        page = client.get(f"/staff/tips/{tip.id}")
        path = f"/staff/tips/{tip.id}/{action}"
        response = client.post(path, data={**data, "csrf": form_token(page.text, path)})
        assert response.status_code in (200, 303), response.text

    post("status", status="in-progress")
    assert {c["tip_status"] for c in copies_of(engine, case_number).values()} == {"in-progress"}
    assert out_of_sync(engine) == []

    post("assign", assignee=str(officer_id))
    assert {c["assignee_id"] for c in copies_of(engine, case_number).values()} == {officer_id}
    assert out_of_sync(engine) == []

    # Hand-over: the new desk's row starts with the tip's current values.
    with db.read_session(engine) as session:
        target = session.exec(
            select(Desk).where(col(Desk.id).not_in(list(copies_of(engine, case_number))))
        ).first()
    assert target is not None
    post("handover", desk=str(target.id), basis="legal-basis", legal_basis="OSL 10 kap. 2 §")
    copies = copies_of(engine, case_number)
    assert target.id in copies and copies[target.id]["tip_status"] == "in-progress"
    assert copies[target.id]["assignee_id"] == officer_id
    assert out_of_sync(engine) == []

    post("status", status="closed", outcome="unfounded")
    post("assign", assignee="")
    copies = copies_of(engine, case_number)
    assert {c["tip_status"] for c in copies.values()} == {"closed"}
    assert {c["assignee_id"] for c in copies.values()} == {None}
    assert len(copies) >= 2 and out_of_sync(engine) == []

    # A tip taken by phone.
    form = client.get("/staff/intake")
    done = client.post(
        "/staff/intake",
        data={
            **ANSWERS,
            "category": "other",
            "language": "sv",
            "csrf": form_token(form.text, "/staff/intake"),
        },
    )
    assert done.status_code == 200 and 'id="case-number"' in done.text
    assert out_of_sync(engine) == []

    # A desk that acknowledges automatically: the tip's status changes as it is stored.
    set_auto_acknowledge(engine, True)
    client.cookies.clear()
    _code, acknowledged = send_tip(client, "sv", {**ANSWERS, "category": "other"}, [])
    assert tip_of(engine, acknowledged).status == "acknowledged"
    assert {c["tip_status"] for c in copies_of(engine, acknowledged).values()} == {"acknowledged"}
    assert out_of_sync(engine) == []


# --- the inbox gives what a reading of the tips gives ------------------------------------------------------


# Days before now each tip arrived: deadlines either side of now and of "due within 2 days"; two tips arrive
# at the same moment, so the tie-break by tip id is exercised across a page boundary.
AGES_DAYS = (0.1, 1, 3, 5.5, 6, 8, 8, 20, 60, 90, 95, 120, 200, 400)


def build_tips(
    engine: Engine, settings: Settings, fast_argon2: crypto.Argon2Params, mine: list[Desk], other: Desk
) -> tuple[list[str], list[int]]:
    """Tips on my desks, on both of them, and on another desk, in every status, assigned or not; returns
    the tip ids and the staff ids used as assignees."""
    routes = ([mine[0]], [mine[1]], [mine[0], mine[1]], [other], [mine[1], other])
    now = utcnow()
    with session_scope(engine) as session:
        municipalities = list(session.exec(select(Municipality).order_by(col(Municipality.id))).all())[:2]
        staff = list(session.exec(select(StaffAccount.id).order_by(col(StaffAccount.id))).all())[:2]
        organisations = {o.id: o.name for o in session.exec(select(Organisation))}
        keys = {d.id: [crypto.X25519Identity.generate()] for d in session.exec(select(Desk)) if d.id}
        ids = []
        for i, age in enumerate(AGES_DAYS):
            municipality = municipalities[i % 2]
            assert municipality.id is not None
            category = ("drugs", "other")[i % 3 % 2]
            desks = routes[i % len(routes)]
            tip = tips.store_tip(
                session,
                tip_id=new_id(),
                answers=TipAnswers(
                    municipality=municipality.code,
                    category=category,
                    what="Något händer.",
                    when="",
                    where="",
                    how_known="",
                    who="",
                    contact="",
                ),
                municipality_id=municipality.id,
                language="sv",
                desks=[
                    Recipient(
                        desk_id=db.id_of(d),
                        desk_name=d.name,
                        organisation_name=organisations[d.organisation_id],
                        public_key=d.public_key,
                    )
                    for d in desks
                ],
                keys=crypto.derive_mailbox(
                    crypto.ReplyCode.generate(),
                    instance_salt=settings.secrets.instance_salt,
                    pepper=settings.pepper,
                    params=fast_argon2,
                ),
                kdf=fast_argon2.name,
                files=[],
            )
            # Arrival in the past: what the app never changes later, so set here and copied with the helper.
            tip.created_at = now - datetime.timedelta(days=age)
            tip.acknowledge_by = tip.created_at + tips.ACKNOWLEDGE_WITHIN
            tip.feedback_by = tip.created_at + tips.FEEDBACK_WITHIN
            tip.last_tipster_activity_at = tip.created_at
            session.add(tip)
            tips.copy_inbox_keys(session, tip)
            status = triage.STATUSES[i % 4]
            if status != "new":
                triage.set_status(
                    session,
                    tip_id=tip.id,
                    status=status,
                    outcome="unfounded" if status == "closed" else None,
                    actor="test",
                    desk_keys=keys,
                )
            if i % 3:
                triage.assign(
                    session, tip_id=tip.id, assignee_id=staff[i % 3 - 1], actor="test", desk_keys=keys
                )
            if i % 3 == 0:  # read since the tipster's last word
                session.add(TipRead(tip_id=tip.id, staff_id=staff[0], read_at=tip.created_at))
            elif i % 3 == 1:  # read before it
                session.add(
                    TipRead(tip_id=tip.id, staff_id=staff[0], read_at=tip.created_at - datetime.timedelta(1))
                )
            ids.append(tip.id)
    return ids, staff


def expected_inbox(
    session: Session, *, staff_id: int, desk_ids: list[int], filters: triage.InboxFilter
) -> list[Tip]:
    """The inbox as the definition says, read from the tips and their desks in Python."""
    now = utcnow()
    desks_of: dict[str, set[int]] = {}
    for recipient in session.exec(select(TipRecipient)):
        desks_of.setdefault(recipient.tip_id, set()).add(recipient.desk_id)
    codes = {m.id: m.code for m in session.exec(select(Municipality))}
    desks = {d for d in desk_ids if filters.desk is None or d == filters.desk}
    open_ = {"new", "acknowledged", "in-progress"}
    soon = now + datetime.timedelta(days=2)

    def keep(t: Tip) -> bool:
        deadline = {
            "": True,
            "acknowledge-overdue": t.status == "new" and t.acknowledge_by < now,
            "feedback-overdue": t.status in open_ and t.feedback_by < now,
            "due-soon": (t.status == "new" and t.acknowledge_by < soon)
            or (t.status in open_ and t.feedback_by < soon),
        }[filters.deadline]
        return (
            bool(desks_of.get(t.id, set()) & desks)
            and (not filters.status or t.status == filters.status)
            and (not filters.category or t.category == filters.category)
            and (not filters.municipality or codes[t.municipality_id] == filters.municipality)
            and (filters.assignee != "me" or t.assignee_id == staff_id)
            and (filters.assignee != "none" or t.assignee_id is None)
            and deadline
        )

    key = {
        "newest": lambda t: t.created_at,
        "oldest": lambda t: t.created_at,
        "acknowledge-by": lambda t: t.acknowledge_by,
        "feedback-by": lambda t: t.feedback_by,
    }[filters.sort]
    chosen = [t for t in session.exec(select(Tip)) if keep(t)]
    return sorted(chosen, key=lambda t: (key(t), t.id), reverse=filters.sort == "newest")


def test_filters_sorting_paging_and_counts_match_the_tips(
    services: Services,
    settings: Settings,
    demo_accounts: dict[str, Any],
    fast_argon2: crypto.Argon2Params,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(triage, "PAGE_SIZE", 3)
    engine = services.engine
    with db.read_session(engine) as session:
        all_desks = list(session.exec(select(Desk).order_by(col(Desk.id))))
    mine, other = all_desks[:2], all_desks[2]
    ids, staff = build_tips(engine, settings, fast_argon2, mine, other)
    assert out_of_sync(engine) == []
    me = staff[0]
    my_desks = [db.id_of(d) for d in mine]
    with db.read_session(engine) as session:
        municipality = session.exec(select(Municipality).order_by(col(Municipality.id))).first()
        assert municipality is not None
        read_at = {r.tip_id: r.read_at for r in session.exec(select(TipRead).where(TipRead.staff_id == me))}
    variants: list[dict[str, Any]] = [
        {},
        *({"status": s} for s in triage.STATUSES),
        {"category": "drugs"},
        {"municipality": municipality.code},
        {"municipality": "nowhere"},
        {"assignee": "me"},
        {"assignee": "none"},
        *({"deadline": d} for d in ("acknowledge-overdue", "feedback-overdue", "due-soon")),
        *({"desk": d} for d in [*my_desks, db.id_of(other)]),
        {"status": "in-progress", "category": "other", "assignee": "me"},
    ]
    seen_ties = False
    for variant, sort in itertools.product(variants, triage.SORTS):
        first = triage.InboxFilter(**variant, sort=sort)
        with db.read_session(engine) as session:
            expected = expected_inbox(session, staff_id=me, desk_ids=my_desks, filters=first)
        pages = max(1, -(-len(expected) // 3))
        for page in range(1, pages + 2):  # and one past the end, which shows the last page
            filters = triage.InboxFilter(**variant, sort=sort, page=page)
            with db.read_session(engine) as session:
                got = triage.inbox(session, staff_id=me, desk_ids=my_desks, filters=filters)
            shown = min(page, pages)
            want = expected[(shown - 1) * 3 : shown * 3]
            label = (variant, sort, page)
            assert (got.total, got.pages, got.page) == (len(expected), pages, shown), label
            assert [r.tip.id for r in got.rows] == [t.id for t in want], label
            for row in got.rows:
                assert row.unread == (
                    read_at.get(row.tip.id) is None or read_at[row.tip.id] < row.tip.created_at
                )
        seen_ties |= len({t.created_at for t in expected}) < len(expected)
    assert seen_ties  # the two tips that arrived together were both listed somewhere

    with db.read_session(engine) as session:
        page = triage.inbox(session, staff_id=me, desk_ids=my_desks, filters=triage.InboxFilter())
        recipients = list(session.exec(select(TipRecipient)))
        statuses = {t.id: t.status for t in session.exec(select(Tip))}
    # A tip on both of my desks is listed once, and counted once in the total, but on each desk's count.
    shared = [t for t in ids if sum(r.tip_id == t and r.desk_id in my_desks for r in recipients) == 2]
    assert shared and page.total == len({r.tip_id for r in recipients if r.desk_id in my_desks})
    assert page.counts_per_desk == {
        d: n
        for d in my_desks
        if (n := sum(r.desk_id == d and statuses[r.tip_id] != "closed" for r in recipients))
    }


# --- the migration fills the copies of existing rows -------------------------------------------------------


def test_the_migration_backfills_existing_recipients(database_url: str) -> None:
    """Down to 0002, rows written there as the previous release wrote them, then up again: the copies."""
    config = db.alembic_config(database_url)
    command.downgrade(config, "0002")
    engine = db.make_nullpool_engine(database_url)
    now = utcnow().replace(microsecond=0)

    def table(name: str, *columns: str, times: tuple[str, ...] = ()) -> sa.TableClause:
        return sa.table(name, *(sa.column(c) for c in columns), *(sa.column(c, UTCDateTime()) for c in times))

    key = crypto.X25519Identity.generate().recipient
    tip_columns = (
        "id", "case_number", "municipality_id", "category", "language", "status", "mailbox_id",
        "reply_code_kdf", "tipster_public_key", "answers", "taken_by_phone", "assignee_id",
    )  # fmt: skip
    tip_times = ("created_at", "last_tipster_activity_at", "acknowledge_by", "feedback_by")
    tips_before = [
        {
            "id": new_id(), "case_number": f"AAAA-AAA{i}", "municipality_id": 1, "category": category,
            "language": "sv", "status": status, "mailbox_id": bytes([i]) * 32, "reply_code_kdf": "test",
            "tipster_public_key": str(key), "answers": b"sealed", "taken_by_phone": False,
            "assignee_id": assignee, "created_at": now - datetime.timedelta(days=i),
            "last_tipster_activity_at": now, "acknowledge_by": now + datetime.timedelta(days=7 - i),
            "feedback_by": now + datetime.timedelta(days=91 - i),
        }
        for i, (category, status, assignee) in enumerate([("drugs", "new", None), ("other", "closed", 1)])
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(
            sa.insert(table("organisation", "id", "code", "name", "kind", "recovery_public_key")),
            [{"id": 1, "code": "org", "name": "Org", "kind": "police", "recovery_public_key": str(key)}],
        )
        conn.execute(
            sa.insert(
                table("desk", "id", "code", "organisation_id", "name", "public_key", "retention_days",
                      times=("created_at",))
            ),
            [
                {"id": d, "code": f"desk-{d}", "organisation_id": 1, "name": f"Desk {d}",
                 "public_key": str(key), "retention_days": 365, "created_at": now}
                for d in (1, 2)
            ],
        )  # fmt: skip
        conn.execute(
            sa.insert(table("municipality", "id", "code", "name", "finnish_admin_area")),
            [{"id": 1, "code": "nykvarn", "name": "Nykvarn", "finnish_admin_area": False}],
        )
        conn.execute(
            sa.insert(table("staffaccount", "id", "username", "role", "disabled", times=("created_at",))),
            [{"id": 1, "username": "officer", "role": "officer", "disabled": False, "created_at": now}],
        )
        conn.execute(sa.insert(table("tip", *tip_columns, times=tip_times)), tips_before)
        conn.execute(
            sa.insert(table("tiprecipient", "tip_id", "desk_id", "reason", times=("added_at",))),
            [
                {"tip_id": tips_before[0]["id"], "desk_id": 1, "reason": "routing", "added_at": now},
                {"tip_id": tips_before[1]["id"], "desk_id": 1, "reason": "routing", "added_at": now},
                {"tip_id": tips_before[1]["id"], "desk_id": 2, "reason": "legal-basis", "added_at": now},
            ],
        )
    db.upgrade(database_url)
    assert out_of_sync(engine) == []
    with db.read_session(engine) as session:
        rows = {(r.tip_id, r.desk_id): r for r in session.exec(select(TipRecipient))}
    assert len(rows) == 3
    for (tip_id, _desk), row in rows.items():
        before = next(t for t in tips_before if t["id"] == tip_id)
        assert {column: getattr(row, column) for column in INBOX_COPIES} == {
            column: before[attribute] for column, attribute in INBOX_COPIES.items()
        }
    with db.read_session(engine) as session:
        page = triage.inbox(session, staff_id=1, desk_ids=[1, 2], filters=triage.InboxFilter())
    assert [r.tip.id for r in page.rows] == [tips_before[0]["id"], tips_before[1]["id"]]
    assert page.counts_per_desk == {1: 1}
    engine.dispose()
