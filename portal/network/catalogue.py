"""The tip categories and the demo network: municipalities, organisations, desks, routes, staff accounts.

Pure data, no database: `lykta demo` seeds the tables of `portal.network.models` from it, and the form
reads the categories from here. Category names and hints are English msgids marked with `N_` and
translated where they are shown (STYLE rule 9); names of places, organisations and desks are proper
Swedish names and are never translated.

The categories and where they go follow the table in `shared/domain.md`. One column of that table is left
out on purpose: the municipal housing companies ("also possible" for population-register fraud) are
companies, not authorities, and have no desk in the demo network.
"""

# Swedish typography separates a unit from its task with a spaced en dash (U+2013), so the dashes in the
# desk names below are meant, not look-alikes of a hyphen.
# ruff: noqa: RUF001

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from portal.i18n import N_

# ---------------------------------------------------------------------------------------------------------
# Categories


@dataclasses.dataclass(frozen=True)
class Category:
    """What a tip is about. `hint` is one plain sentence telling the resident what belongs here."""

    code: str
    name: str
    hint: str
    # An emergency has no desk: the form is not shown, the page says to call 112 (domain.md, "Law").
    emergency: bool = False


CATEGORIES: tuple[Category, ...] = (
    Category(
        "emergency",
        N_("Danger right now"),
        N_("Someone is in danger or a crime is happening now: call 112 instead of using this form."),
        emergency=True,
    ),
    Category(
        "drugs",
        N_("Drugs"),
        N_("Someone sells drugs, or children are used to carry or sell them."),
    ),
    Category(
        "weapons",
        N_("Weapons and explosives"),
        N_("Someone has, hides or sells guns, other weapons or explosives."),
    ),
    Category(
        "violence",
        N_("Violence, or children drawn into gangs"),
        N_("Someone uses violence, or children and young people are drawn into gangs or crime."),
    ),
    Category(
        "extortion",
        N_("Threats and extortion"),
        N_("Someone is threatened or forced to pay, or a witness or an employee is pressured."),
    ),
    Category(
        "money-laundering",
        N_("Money laundering and front men"),
        N_("Money from crime is hidden, or someone lends their name to a company or bank account."),
    ),
    Category(
        "income-support",
        N_("Income support fraud"),
        N_("Someone cheats to get income support (money from the municipality for basic living costs)."),
    ),
    Category(
        "assistance",
        N_("Personal assistance (LSS) or home care"),
        N_("Assistance or home care is paid for but not given, or is given by someone other than claimed."),
    ),
    Category(
        "care-providers",
        N_("Dishonest care or housing providers"),
        N_("A company paid to give care, support or housing cheats or neglects the people it should help."),
    ),
    Category(
        "state-benefits",
        N_("Other benefits from Försäkringskassan"),
        N_("Someone cheats to get sickness, parental, housing or other benefits from Försäkringskassan."),
    ),
    Category(
        "population-register",
        N_("Wrong address in the population register"),
        N_(
            "Many people are registered at one address, someone does not live where they are registered, "
            "or flats are rented out illegally."
        ),
    ),
    Category(
        "environment",
        N_("Environmental and waste crime"),
        N_("Waste is dumped or burned, or a business handles waste, scrap or chemicals illegally."),
    ),
    Category(
        "building",
        N_("Unlawful building and dishonest builders"),
        N_("Someone builds without a permit, or a building firm cheats customers, workers or the state."),
    ),
    Category(
        "labour",
        N_("Undeclared work and exploitation"),
        N_("People work without proper pay or without being declared, or have to live at their workplace."),
    ),
    Category(
        "tax",
        N_("Tax and company fraud"),
        N_("A company or a person hides income, keeps false books or uses false invoices."),
    ),
    Category(
        "corruption",
        N_("Insiders helping criminals"),
        N_("Someone inside a municipality, an authority or a company helps criminals or leaks to them."),
    ),
    Category(
        "licences",
        N_("Alcohol, tobacco and food"),
        N_("A restaurant, shop or club breaks alcohol, tobacco or food rules, or uses a front person."),
    ),
    Category(
        "other",
        N_("Not sure"),
        N_("Not sure where it belongs? A joint team of the municipalities and the police reads it first."),
    ),
)
CATEGORY_CODES: frozenset[str] = frozenset(c.code for c in CATEGORIES)
_CATEGORY_BY_CODE: Mapping[str, Category] = MappingProxyType({c.code: c for c in CATEGORIES})


def category(code: str) -> Category:
    """The category with `code`; KeyError for an unknown code."""
    return _CATEGORY_BY_CODE[code]


# "How do you know?" on the form (domain.md): (code, msgid).
HOW_KNOWN: tuple[tuple[str, str], ...] = (
    ("saw", N_("I saw it myself")),
    ("heard", N_("I heard it from someone")),
    ("other", N_("Another way")),
)

# ---------------------------------------------------------------------------------------------------------
# The demo network


@dataclasses.dataclass(frozen=True)
class Municipality:
    """A municipality tips can be about. In the Finnish administrative area the form must offer Finnish."""

    code: str
    name: str
    finnish_admin_area: bool = False


@dataclasses.dataclass(frozen=True)
class Organisation:
    """An authority that owns desks. `kind` is one of ORGANISATION_KINDS."""

    code: str
    name: str
    kind: str


@dataclasses.dataclass(frozen=True)
class DeskSpec:
    """A desk (team) of an organisation that receives tips; `organisation` is an Organisation code."""

    code: str
    organisation: str
    name: str


@dataclasses.dataclass(frozen=True)
class Route:
    """Tips of `category` about `municipality` go to `desk`; non-primary routes are hand-over options.

    A hand-over to a non-primary desk needs the tipster's consent or a recorded legal basis (domain.md).
    """

    municipality: str
    category: str
    desk: str
    primary: bool


@dataclasses.dataclass(frozen=True)
class DemoAccount:
    """A staff account `lykta demo` creates; its password and TOTP secret are generated when seeding."""

    username: str
    role: str
    desks: tuple[str, ...]


ORGANISATION_KINDS = frozenset({"municipality", "police", "agency", "joint"})

# Södertälje, Eskilstuna and Enköping are in the Finnish administrative area (domain.md, "Languages").
MUNICIPALITIES: tuple[Municipality, ...] = (
    Municipality("sodertalje", "Södertälje", finnish_admin_area=True),
    Municipality("nykvarn", "Nykvarn"),
    Municipality("strangnas", "Strängnäs"),
    Municipality("eskilstuna", "Eskilstuna", finnish_admin_area=True),
    Municipality("enkoping", "Enköping", finnish_admin_area=True),
    Municipality("vasteras", "Västerås"),
)

ORGANISATIONS: tuple[Organisation, ...] = (
    Organisation("sodertalje-kommun", "Södertälje kommun", "municipality"),
    Organisation("nykvarn-kommun", "Nykvarns kommun", "municipality"),
    Organisation("strangnas-kommun", "Strängnäs kommun", "municipality"),
    Organisation("eskilstuna-kommun", "Eskilstuna kommun", "municipality"),
    Organisation("enkoping-kommun", "Enköpings kommun", "municipality"),
    Organisation("vasteras-stad", "Västerås stad", "municipality"),
    Organisation("polisen-sodertalje", "Polisen, lokalpolisområde Södertälje", "police"),
    Organisation("polisen-eskilstuna", "Polisen, lokalpolisområde Eskilstuna", "police"),
    Organisation("polisen-vasteras", "Polisen, lokalpolisområde Västerås", "police"),
    Organisation("polisen-enkoping", "Polisen, lokalpolisområde Enköping", "police"),
    Organisation("skatteverket", "Skatteverket", "agency"),
    Organisation("forsakringskassan", "Försäkringskassan", "agency"),
    Organisation("ivo", "Inspektionen för vård och omsorg (IVO)", "agency"),
    Organisation("arbetsmiljoverket", "Arbetsmiljöverket", "agency"),
    Organisation("pax-ragnhild", "Samverkan Pax/Ragnhild (gemensam bedömning)", "joint"),
)

# Which local police area covers each municipality, by county: Nykvarn is policed from Södertälje
# (Stockholm county); Strängnäs, like Eskilstuna, is in Södermanland; Enköping (Uppsala county) and Västerås
# (Västmanland) have their own local police areas.
POLICE_AREA_FOR_MUNICIPALITY: Mapping[str, str] = MappingProxyType(
    {
        "sodertalje": "polisen-sodertalje",
        "nykvarn": "polisen-sodertalje",
        "strangnas": "polisen-eskilstuna",
        "eskilstuna": "polisen-eskilstuna",
        "enkoping": "polisen-enkoping",
        "vasteras": "polisen-vasteras",
    }
)

# The municipal functions a route can name. Large municipalities have a desk for each; the smaller ones
# run combined desks, as they do in life (see _MUNICIPAL_DESKS).
_INCOME_SUPPORT = "income-support"
_CHILDREN = "children"  # social services, child at risk
_CARE_FOLLOW_UP = "care-follow-up"  # contracted care, LSS and home care
_ENVIRONMENT = "environment"
_BUILDING = "building"
_LICENCES = "licences"
_SECURITY = "security"
_POLICE = "police"  # the municipality's local police area, from POLICE_AREA_FOR_MUNICIPALITY


def _full_municipal_desks(municipality: str, organisation: str) -> tuple[DeskSpec, ...]:
    return (
        DeskSpec(f"{municipality}-bistand", organisation, "Socialtjänsten – ekonomiskt bistånd"),
        DeskSpec(f"{municipality}-barn", organisation, "Socialtjänsten – barn och unga"),
        DeskSpec(f"{municipality}-uppfoljning", organisation, "Vård och omsorg – avtalsuppföljning"),
        DeskSpec(f"{municipality}-miljo", organisation, "Miljö- och hälsoskydd"),
        DeskSpec(f"{municipality}-bygg", organisation, "Bygglov och tillsyn"),
        DeskSpec(f"{municipality}-tillstand", organisation, "Tillstånd (alkohol, livsmedel)"),
        DeskSpec(f"{municipality}-sakerhet", organisation, "Säkerhetsenheten"),
    )


def _full_functions(municipality: str) -> Mapping[str, str]:
    return {
        _INCOME_SUPPORT: f"{municipality}-bistand",
        _CHILDREN: f"{municipality}-barn",
        _CARE_FOLLOW_UP: f"{municipality}-uppfoljning",
        _ENVIRONMENT: f"{municipality}-miljo",
        _BUILDING: f"{municipality}-bygg",
        _LICENCES: f"{municipality}-tillstand",
        _SECURITY: f"{municipality}-sakerhet",
    }


DESKS: tuple[DeskSpec, ...] = (
    *_full_municipal_desks("sodertalje", "sodertalje-kommun"),
    *_full_municipal_desks("eskilstuna", "eskilstuna-kommun"),
    *_full_municipal_desks("vasteras", "vasteras-stad"),
    DeskSpec(
        "strangnas-socialtjanst", "strangnas-kommun", "Socialtjänsten – ekonomiskt bistånd, barn och unga"
    ),
    DeskSpec("strangnas-uppfoljning", "strangnas-kommun", "Vård och omsorg – avtalsuppföljning"),
    DeskSpec("strangnas-miljo-bygg", "strangnas-kommun", "Miljö och bygg"),
    DeskSpec("strangnas-tillstand", "strangnas-kommun", "Tillstånd (alkohol, livsmedel)"),
    DeskSpec("strangnas-sakerhet", "strangnas-kommun", "Säkerhetssamordning"),
    DeskSpec(
        "enkoping-socialtjanst", "enkoping-kommun", "Socialtjänsten – ekonomiskt bistånd, barn och unga"
    ),
    DeskSpec("enkoping-uppfoljning", "enkoping-kommun", "Vård och omsorg – avtalsuppföljning"),
    DeskSpec("enkoping-miljo-bygg", "enkoping-kommun", "Miljö och bygg"),
    DeskSpec("enkoping-tillstand", "enkoping-kommun", "Tillstånd (alkohol, livsmedel)"),
    DeskSpec("enkoping-sakerhet", "enkoping-kommun", "Säkerhetssamordning"),
    DeskSpec("nykvarn-socialtjanst", "nykvarn-kommun", "Socialtjänsten"),
    DeskSpec("nykvarn-samhallsbyggnad", "nykvarn-kommun", "Samhällsbyggnad – miljö, bygg och tillstånd"),
    DeskSpec("nykvarn-sakerhet", "nykvarn-kommun", "Säkerhetssamordnare"),
    DeskSpec("polisen-sodertalje-tips", "polisen-sodertalje", "Underrättelsetjänst/tips"),
    DeskSpec("polisen-eskilstuna-tips", "polisen-eskilstuna", "Underrättelsetjänst/tips"),
    DeskSpec("polisen-vasteras-tips", "polisen-vasteras", "Underrättelsetjänst/tips"),
    DeskSpec("polisen-enkoping-tips", "polisen-enkoping", "Underrättelsetjänst/tips"),
    DeskSpec("skatteverket-folkbokforing", "skatteverket", "Folkbokföring – kontroll"),
    DeskSpec("skatteverket-kontroll", "skatteverket", "Kontroll – skattefusk och svartarbete"),
    DeskSpec(
        "forsakringskassan-assistans", "forsakringskassan", "Kontrollverksamheten – assistansersättning"
    ),
    DeskSpec("forsakringskassan-formaner", "forsakringskassan", "Kontrollverksamheten – övriga förmåner"),
    DeskSpec("ivo-tillsyn", "ivo", "Tillsyn – socialtjänst och LSS"),
    DeskSpec("arbetsmiljoverket-inspektion", "arbetsmiljoverket", "Inspektion – arbetslivskriminalitet"),
    DeskSpec("pax-ragnhild-bedomning", "pax-ragnhild", "Gemensam bedömning av tips"),
)

# Municipal function -> desk code, per municipality.
_MUNICIPAL_DESKS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "sodertalje": _full_functions("sodertalje"),
        "eskilstuna": _full_functions("eskilstuna"),
        "vasteras": _full_functions("vasteras"),
        **{
            municipality: {
                _INCOME_SUPPORT: f"{municipality}-socialtjanst",
                _CHILDREN: f"{municipality}-socialtjanst",
                _CARE_FOLLOW_UP: f"{municipality}-uppfoljning",
                _ENVIRONMENT: f"{municipality}-miljo-bygg",
                _BUILDING: f"{municipality}-miljo-bygg",
                _LICENCES: f"{municipality}-tillstand",
                _SECURITY: f"{municipality}-sakerhet",
            }
            for municipality in ("strangnas", "enkoping")
        },
        "nykvarn": {
            _INCOME_SUPPORT: "nykvarn-socialtjanst",
            _CHILDREN: "nykvarn-socialtjanst",
            _CARE_FOLLOW_UP: "nykvarn-socialtjanst",
            _ENVIRONMENT: "nykvarn-samhallsbyggnad",
            _BUILDING: "nykvarn-samhallsbyggnad",
            _LICENCES: "nykvarn-samhallsbyggnad",
            _SECURITY: "nykvarn-sakerhet",
        },
    }
)

# Category -> (primary recipients, also possible), after the table in domain.md. A recipient is a municipal
# function, _POLICE, or the code of an agency's or the joint desk. Where the table says "A or B" for the
# primary desk (assistance: Försäkringskassan pays assistance over 20 hours a week, the municipality the
# rest; labour: Skatteverket and Arbetsmiljöverket), both receive the tip: the resident cannot know which
# one it is, and sees both recipients before sending.
_RECIPIENTS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = MappingProxyType(
    {
        "drugs": ((_POLICE,), (_CHILDREN,)),
        "weapons": ((_POLICE,), ()),
        "violence": ((_POLICE,), (_CHILDREN,)),
        "extortion": ((_POLICE,), (_SECURITY,)),
        "money-laundering": ((_POLICE,), ()),
        "income-support": ((_INCOME_SUPPORT,), ("forsakringskassan-formaner",)),
        "assistance": (("forsakringskassan-assistans", _CARE_FOLLOW_UP), ("ivo-tillsyn",)),
        "care-providers": ((_CARE_FOLLOW_UP,), ("ivo-tillsyn",)),
        "state-benefits": (("forsakringskassan-formaner",), ()),
        "population-register": (("skatteverket-folkbokforing",), ()),
        "environment": ((_ENVIRONMENT,), (_POLICE,)),
        "building": ((_BUILDING,), (_POLICE,)),
        "labour": (("skatteverket-kontroll", "arbetsmiljoverket-inspektion"), (_POLICE,)),
        "tax": (("skatteverket-kontroll",), (_POLICE,)),
        "corruption": ((_SECURITY,), (_POLICE,)),
        "licences": ((_LICENCES,), (_POLICE,)),
        "other": (("pax-ragnhild-bedomning",), ()),
    }
)


def _desk_for(recipient: str, municipality: str) -> str:
    if recipient == _POLICE:
        return f"{POLICE_AREA_FOR_MUNICIPALITY[municipality]}-tips"
    return _MUNICIPAL_DESKS[municipality].get(recipient, recipient)


def demo_routes() -> list[Route]:
    """The routing table for every municipality and every category except emergency (which has no desk)."""
    routes: list[Route] = []
    for municipality in MUNICIPALITIES:
        for cat in CATEGORIES:
            if cat.emergency:
                continue
            primary, also_possible = _RECIPIENTS[cat.code]
            for recipients, is_primary in ((primary, True), (also_possible, False)):
                routes.extend(
                    Route(municipality.code, cat.code, _desk_for(recipient, municipality.code), is_primary)
                    for recipient in recipients
                )
    return routes


DEMO_ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount("anna.officer.sodertalje", "officer", ("sodertalje-bistand",)),
    DemoAccount("erik.officer.polisen-sodertalje", "officer", ("polisen-sodertalje-tips",)),
    DemoAccount("leila.officer.eskilstuna", "officer", ("eskilstuna-miljo", "eskilstuna-bygg")),
    DemoAccount("mikael.officer.skatteverket", "officer", ("skatteverket-folkbokforing",)),
    DemoAccount("sara.officer.pax-ragnhild", "officer", ("pax-ragnhild-bedomning",)),
    DemoAccount("karin.lead.pax-ragnhild", "desk-lead", ("pax-ragnhild-bedomning",)),
    DemoAccount("ingrid.administrator", "administrator", ()),
    DemoAccount("per.analyst", "analyst", ()),
)
