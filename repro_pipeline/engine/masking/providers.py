"""Fake value providers: pure functions of a 32-byte seed.

Word lists come from Faker's en_US data (pinned with Faker's version), but no Faker generator or global
random state is used, so a value depends only on its seed. Every provider draws from ranges reserved for
documentation or never issued (example.* domains, TEST-NET addresses, 555-01xx numbers, 9xx SSN areas,
test card BINs), so a fake cannot be mistaken for production data.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from datetime import date, timedelta

from faker.providers.address.en_US import Provider as _Address
from faker.providers.company.en_US import Provider as _Company
from faker.providers.job.en_US import Provider as _Job
from faker.providers.person.en_US import Provider as _Person

Provider = Callable[[bytes, Mapping[str, str]], str]

_FIRST_NAMES = tuple(_Person.first_names)
_LAST_NAMES = tuple(_Person.last_names)
_COMPANY_SUFFIXES = tuple(_Company.company_suffixes)
_STREET_SUFFIXES = tuple(_Address.street_suffixes)
_CITY_PREFIXES = tuple(_Address.city_prefixes)
_CITY_SUFFIXES = tuple(_Address.city_suffixes)
_COUNTRIES = tuple(_Address.countries)
_JOB_TITLES = tuple(_Job.jobs)
_EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
_TEST_NETS = ("192.0.2", "198.51.100", "203.0.113")
_TEST_CARD_BINS = ("424242", "400000", "555555", "222300")


def _number(seed: bytes, slot: int) -> int:
    """An unsigned 32-bit number from bytes ``4*slot`` to ``4*slot+4`` of the seed (slots 0..7)."""
    return int.from_bytes(seed[4 * slot : 4 * slot + 4], "big")


def _pick(options: tuple[str, ...], seed: bytes, slot: int) -> str:
    return options[_number(seed, slot) % len(options)]


def first_name(seed: bytes, params: Mapping[str, str]) -> str:
    return _pick(_FIRST_NAMES, seed, 0)


def last_name(seed: bytes, params: Mapping[str, str]) -> str:
    return _pick(_LAST_NAMES, seed, 1)


def full_name(seed: bytes, params: Mapping[str, str]) -> str:
    return f"{first_name(seed, params)} {last_name(seed, params)}"


def username(seed: bytes, params: Mapping[str, str]) -> str:
    return f"{first_name(seed, params).lower()}.{last_name(seed, params).lower()}{_number(seed, 2) % 10_000}"


def email(seed: bytes, params: Mapping[str, str]) -> str:
    domain = params.get("domain") or _pick(_EMAIL_DOMAINS, seed, 3)
    return f"{username(seed, params)}@{domain}"


def company(seed: bytes, params: Mapping[str, str]) -> str:
    return f"{last_name(seed, params)} {_pick(_COMPANY_SUFFIXES, seed, 2)}"


def job_title(seed: bytes, params: Mapping[str, str]) -> str:
    return _pick(_JOB_TITLES, seed, 4)


def phone(seed: bytes, params: Mapping[str, str]) -> str:
    area = 200 + _number(seed, 0) % 800
    return f"+1-{area}-555-01{_number(seed, 1) % 100:02d}"


def street(seed: bytes, params: Mapping[str, str]) -> str:
    return f"{1 + _number(seed, 4) % 9999} {last_name(seed, params)} {_pick(_STREET_SUFFIXES, seed, 5)}"


def city(seed: bytes, params: Mapping[str, str]) -> str:
    return f"{_pick(_CITY_PREFIXES, seed, 6)} {first_name(seed, params)}{_pick(_CITY_SUFFIXES, seed, 7)}"


def postcode(seed: bytes, params: Mapping[str, str]) -> str:
    return f"{_number(seed, 6) % 100_000:05d}"


def country(seed: bytes, params: Mapping[str, str]) -> str:
    return _pick(_COUNTRIES, seed, 7)


def address(seed: bytes, params: Mapping[str, str]) -> str:
    return f"{street(seed, params)}, {city(seed, params)} {postcode(seed, params)}, {country(seed, params)}"


def ip_address(seed: bytes, params: Mapping[str, str]) -> str:
    return f"{_pick(_TEST_NETS, seed, 0)}.{1 + _number(seed, 1) % 254}"


def uuid4(seed: bytes, params: Mapping[str, str]) -> str:
    return str(uuid.UUID(bytes=seed[:16], version=4))


def date_of_birth(seed: bytes, params: Mapping[str, str]) -> str:
    return (date(1950, 1, 1) + timedelta(days=_number(seed, 2) % (55 * 365))).isoformat()


def ssn(seed: bytes, params: Mapping[str, str]) -> str:
    return f"{900 + _number(seed, 0) % 100:03d}-{1 + _number(seed, 1) % 99:02d}-{1 + _number(seed, 2) % 9999:04d}"


def credit_card(seed: bytes, params: Mapping[str, str]) -> str:
    body = _pick(_TEST_CARD_BINS, seed, 0) + f"{_number(seed, 1) % 10**9:09d}"
    return body + _luhn_check_digit(body)


def _luhn_check_digit(body: str) -> str:
    total = 0
    for position, digit in enumerate(reversed(body)):
        value = int(digit) * (2 if position % 2 == 0 else 1)
        total += value - 9 if value > 9 else value
    return str((10 - total % 10) % 10)


PROVIDER_PARAMS: Mapping[str, tuple[str, ...]] = {"email": ("domain",)}


def _longest(options: tuple[str, ...], *, lower: bool = False) -> int:
    return max(len(option.lower() if lower else option) for option in options)


def max_length(provider: str, params: Mapping[str, str]) -> int:
    """The most characters ``provider`` can give with ``params`` (checked against varchar(n) at plan time)."""
    first, last = _longest(_FIRST_NAMES), _longest(_LAST_NAMES)
    user = _longest(_FIRST_NAMES, lower=True) + 1 + _longest(_LAST_NAMES, lower=True) + 4
    street_length = 4 + 1 + last + 1 + _longest(_STREET_SUFFIXES)
    city_length = _longest(_CITY_PREFIXES) + 1 + first + _longest(_CITY_SUFFIXES)
    lengths = {
        "first_name": first,
        "last_name": last,
        "full_name": first + 1 + last,
        "username": user,
        "email": user + 1 + (len(params["domain"]) if params.get("domain") else _longest(_EMAIL_DOMAINS)),
        "company": last + 1 + _longest(_COMPANY_SUFFIXES),
        "job_title": _longest(_JOB_TITLES),
        "phone": len("+1-999-555-0199"),
        "street": street_length,
        "city": city_length,
        "postcode": 5,
        "country": _longest(_COUNTRIES),
        "address": street_length + 2 + city_length + 1 + 5 + 2 + _longest(_COUNTRIES),
        "ip_address": max(len(net) for net in _TEST_NETS) + 4,
        "uuid": 36,
        "dob": 10,
        "ssn": 11,
        "credit_card": 16,
    }
    return lengths[provider]


PROVIDERS: Mapping[str, Provider] = {
    "first_name": first_name,
    "last_name": last_name,
    "full_name": full_name,
    "username": username,
    "email": email,
    "company": company,
    "job_title": job_title,
    "phone": phone,
    "street": street,
    "city": city,
    "postcode": postcode,
    "country": country,
    "address": address,
    "ip_address": ip_address,
    "uuid": uuid4,
    "dob": date_of_birth,
    "ssn": ssn,
    "credit_card": credit_card,
}
