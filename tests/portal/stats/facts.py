"""Helpers for the statistics tests: read the fact table, write facts for a past quarter, close a tip."""

from __future__ import annotations

import datetime
from typing import Any

from sqlalchemy import Engine, insert
from sqlmodel import Session, col, select
from starlette.testclient import TestClient

from portal.network.models import Desk, Municipality
from portal.stats.models import TipFact
from portal.submission.models import Tip
from tests.portal.submission.browser import form_token


def facts_of(engine: Engine, tip_id: str | None = None) -> list[TipFact]:
    with Session(engine) as db:
        query = select(TipFact).order_by(col(TipFact.desk_id))
        if tip_id is not None:
            query = query.where(TipFact.tip_id == tip_id)
        return list(db.exec(query))


def tip_by_case(engine: Engine, case_number: str) -> Tip:
    with Session(engine) as db:
        return db.exec(select(Tip).where(Tip.case_number == case_number)).one()


def set_status(client: TestClient, tip_id: str, status: str, outcome: str = "") -> None:
    page = client.get(f"/staff/tips/{tip_id}")
    assert page.status_code == 200
    saved = client.post(
        f"/staff/tips/{tip_id}/status",
        data={
            "status": status,
            "outcome": outcome,
            "csrf": form_token(page.text, f"/staff/tips/{tip_id}/status"),
        },
    )
    assert saved.status_code == 200, saved.text


def plant_facts(engine: Engine, rows: list[dict[str, Any]]) -> None:
    """Facts as retention leaves them (no tip behind them), with the demo network's first desk and
    municipality unless a row names others."""
    with Session(engine) as db:
        desk_id = db.exec(select(Desk.id).order_by(col(Desk.id))).first()
        municipality_id = db.exec(select(Municipality.id).order_by(col(Municipality.id))).first()
        defaults = {
            "tip_id": None,
            "desk_id": desk_id,
            "reason": "routing",
            "counts_tip": True,
            "category": "drugs",
            "municipality_id": municipality_id,
            "taken_by_phone": False,
            "acknowledged_on": None,
            "closed_on": None,
            "outcome": None,
        }
        db.execute(insert(TipFact), [{**defaults, **row} for row in rows])
        db.commit()


def day(year: int, month: int, day_of_month: int) -> datetime.date:
    return datetime.date(year, month, day_of_month)
