"""The routing table, one municipality at a time: category x desk -> primary, also possible, or none.

A primary route sends new tips of the category to the desk; an "also possible" route is a hand-over option
(domain.md: a hand-over needs the tipster's consent or a recorded legal basis). What a resident sees before
sending is exactly `portal.network.services.recipients_for`, so the preview calls it rather than guessing.

The grid a form shows may be partial (by default only the desks already routed for the municipality), so
saving changes only the cells the form carried: a desk that was not on the page keeps its routes.
"""

from __future__ import annotations

import dataclasses

from sqlmodel import Session, col, select

from portal.admin.forms import ERROR_CHOOSE, AdminForm, FieldError
from portal.admin.services import InvalidError, NotFoundError
from portal.audit import log as audit
from portal.i18n import N_
from portal.network import services as network
from portal.network.catalogue import CATEGORIES, Category
from portal.network.models import Desk, Municipality, Organisation, Route

PRIMARY = "primary"
POSSIBLE = "possible"
NONE = "none"
CHOICE_LABELS = {
    PRIMARY: N_("receives the tip"),
    POSSIBLE: N_("also possible (hand-over)"),
    NONE: N_("no"),
}
CELL_PREFIX = "route:"
# The emergency category has no desk: the form is not used, the page says to call 112 (domain.md).
ROUTABLE: tuple[Category, ...] = tuple(c for c in CATEGORIES if not c.emergency)
ROUTABLE_CODES = frozenset(c.code for c in ROUTABLE)


@dataclasses.dataclass(frozen=True)
class GridDesk:
    desk: Desk
    organisation: Organisation

    @property
    def id(self) -> int:
        assert self.desk.id is not None  # loaded from the database
        return self.desk.id


@dataclasses.dataclass(frozen=True)
class RoutingGrid:
    municipality: Municipality
    desks: list[GridDesk]
    cells: dict[tuple[str, int], str]  # (category, desk id) -> PRIMARY or POSSIBLE; absent means NONE
    showing_all: bool
    without_primary: list[Category]

    def choice(self, category: str, desk_id: int) -> str:
        return self.cells.get((category, desk_id), NONE)


def municipality_by_code(db: Session, code: str) -> Municipality:
    municipality = network.municipality_by_code(db, code)
    if municipality is None:
        raise NotFoundError()
    return municipality


def _routes(db: Session, municipality_id: int) -> dict[tuple[str, int], Route]:
    rows = db.exec(select(Route).where(Route.municipality_id == municipality_id))
    return {(route.category, route.desk_id): route for route in rows}


def categories_without_primary(db: Session, municipality_id: int) -> list[Category]:
    """Categories a resident of the municipality cannot send: the form would find no recipient."""
    covered = {category for (category, _desk), route in _routes(db, municipality_id).items() if route.primary}
    return [c for c in ROUTABLE if c.code not in covered]


def gaps(db: Session) -> list[tuple[Municipality, list[Category]]]:
    """Every municipality with categories that have no primary desk, for the overview."""
    primary = {
        (municipality_id, category)
        for municipality_id, category in db.exec(
            select(Route.municipality_id, Route.category).where(col(Route.primary))
        ).all()
    }
    found = []
    for municipality in network.municipalities(db):
        missing = [c for c in ROUTABLE if (municipality.id, c.code) not in primary]
        if missing:
            found.append((municipality, missing))
    return found


def grid(db: Session, municipality: Municipality, *, show_all: bool) -> RoutingGrid:
    assert municipality.id is not None
    routes = _routes(db, municipality.id)
    routed_desks = {desk_id for _category, desk_id in routes}
    query = select(Desk, Organisation).join(Organisation, col(Organisation.id) == col(Desk.organisation_id))
    every_desk = [GridDesk(d, o) for d, o in db.exec(query.order_by(col(Organisation.name), col(Desk.name)))]
    showing_all = show_all or not routed_desks
    return RoutingGrid(
        municipality=municipality,
        desks=[d for d in every_desk if showing_all or d.id in routed_desks],
        cells={key: PRIMARY if route.primary else POSSIBLE for key, route in routes.items()},
        showing_all=showing_all,
        without_primary=categories_without_primary(db, municipality.id),
    )


def save(db: Session, municipality: Municipality, form: AdminForm, *, actor: str) -> list[str]:
    """Apply the cells the form carried; returns the changes as "category:desk id:choice" codes.

    The whole form is checked before anything is written, so a bad cell leaves the table as it was.
    """
    assert municipality.id is not None
    wanted: dict[tuple[str, int], str] = {}
    errors: dict[str, FieldError] = {}
    desk_ids = set(db.exec(select(Desk.id)).all())
    for key, value in form.with_prefix(CELL_PREFIX).items():
        category, _, desk_text = key.partition(":")
        if (
            category not in ROUTABLE_CODES
            or not desk_text.isdigit()
            or int(desk_text) not in desk_ids
            or value not in CHOICE_LABELS
        ):
            errors[CELL_PREFIX + key] = FieldError(ERROR_CHOOSE)
            continue
        wanted[(category, int(desk_text))] = value
    if errors:
        raise InvalidError(errors)
    existing = _routes(db, municipality.id)
    changes: list[str] = []
    for (category, desk_id), choice in sorted(wanted.items()):
        route = existing.get((category, desk_id))
        current = NONE if route is None else PRIMARY if route.primary else POSSIBLE
        if choice == current:
            continue
        changes.append(f"{category}:{desk_id}:{choice}")
        if choice == NONE:
            assert route is not None
            db.delete(route)
        elif route is None:
            db.add(
                Route(
                    municipality_id=municipality.id,
                    category=category,
                    desk_id=desk_id,
                    primary=choice == PRIMARY,
                )
            )
        else:
            route.primary = choice == PRIMARY
            db.add(route)
    db.flush()
    audit.record(
        db,
        "admin.routing.saved",
        actor=actor,
        detail={"municipality": municipality.code, "changes": changes},
    )
    return changes


def preview(db: Session, municipality: Municipality, category: str) -> list[network.Recipient]:
    """The recipients a resident is shown on the review page for this municipality and category."""
    return network.recipients_for(db, municipality_code=municipality.code, category=category)
