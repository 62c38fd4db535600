"""The JSON Schema ``format`` values a policy may use, each with a checker of our own.

Why our own: jsonschema checks a format only if an optional package happens
to be installed (``rfc3339-validator`` for ``date-time``, ``fqdn`` for
``hostname``, ``rfc3987`` for ``uri``...) and silently admits anything
otherwise. The same policy hash would then give different verdicts on
different machines. So the gate enforces exactly :data:`SUPPORTED_FORMATS`,
with the checkers below (standard library only, ASCII digits only), through
:data:`FORMAT_CHECKER`, which holds nothing else whatever is installed. A
schema naming any other format is refused when the policy is loaded
(see :func:`kirin.policy.model.check_json_schema`), never ignored at commit time.

What each format admits (a value that is not a string always passes, as
JSON Schema says):

* ``date``: RFC 3339 full-date, a real calendar day (``2024-02-29``).
* ``time``: RFC 3339 full-time, offset required (``12:30:00Z``,
  ``12:30:00.5+02:00``); second 60 only at 23:59 UTC (a leap second).
* ``date-time``: ``date`` ``T`` ``time`` (``T`` and ``Z`` in either case).
* ``duration``: RFC 3339 appendix A (ISO 8601): ``P1Y2M3DT4H5M6S``, ``PT5M``,
  ``P2W``; no fractions, no mixing weeks with other units.
* ``email``: ``local@domain``, both parts non-empty, no whitespace or
  control characters (deliberately loose: real address syntax is vast).
* ``hostname``: RFC 1123, ASCII: dot-separated labels of letters, digits and
  inner hyphens, each at most 63 characters, at most 253 in all.
* ``ipv4``: four decimal octets 0-255, no leading zeros.
* ``ipv6``: RFC 4291 text form (:mod:`ipaddress`), no zone index.
* ``uuid``: 8-4-4-4-12 hexadecimal digits.
* ``uri``: RFC 3986 absolute URI (a scheme, ASCII only, ``%``-escapes well
  formed); ``uri-reference``: a URI or a relative reference.
* ``json-pointer``: RFC 6901; ``relative-json-pointer``: its relative form.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from datetime import date

from jsonschema import FormatChecker

_D = "[0-9]"  # ASCII digits only: '\d' would admit fullwidth and Arabic-Indic ones

_DATE = re.compile(rf"({_D}{{4}})-({_D}{{2}})-({_D}{{2}})")
_TIME = re.compile(rf"({_D}{{2}}):({_D}{{2}}):({_D}{{2}})(?:\.{_D}+)?"
                   rf"(?:[Zz]|([+-])({_D}{{2}}):({_D}{{2}}))")
_DUR_TIME = rf"T(?:{_D}+H(?:{_D}+M(?:{_D}+S)?)?|{_D}+M(?:{_D}+S)?|{_D}+S)"
_DUR_DATE = rf"(?:{_D}+D|{_D}+M(?:{_D}+D)?|{_D}+Y(?:{_D}+M(?:{_D}+D)?)?)"
_DURATION = re.compile(rf"P(?:{_DUR_DATE}(?:{_DUR_TIME})?|{_DUR_TIME}|{_D}+W)")
_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")
_IPV6_CHARS = re.compile(r"[0-9A-Fa-f:.]+")
_UUID = re.compile(r"[0-9A-Fa-f]{8}-(?:[0-9A-Fa-f]{4}-){3}[0-9A-Fa-f]{12}")
_JSON_POINTER = re.compile(r"(?:/(?:[^~/]|~[01])*)*", re.DOTALL)
_RELATIVE_JSON_POINTER = re.compile(r"(?:0|[1-9][0-9]*)(?:#|(?:/(?:[^~/]|~[01])*)*)",
                                    re.DOTALL)
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")

# RFC 3986, appendix A, as regular expressions over ASCII.
_UNRESERVED = r"A-Za-z0-9\-._~"
_SUB_DELIMS = r"!$&'()*+,;="
_PCT = r"%[0-9A-Fa-f]{2}"
_PCHAR = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:@]|{_PCT})"
_SEGMENT_NZ_NC = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}@]|{_PCT})+"
_USERINFO = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}:]|{_PCT})*"
_REG_NAME = rf"(?:[{_UNRESERVED}{_SUB_DELIMS}]|{_PCT})*"  # IPv4 addresses included
_AUTHORITY = rf"(?:{_USERINFO}@)?(?:\[(?P<ip>[^\]]*)\]|{_REG_NAME})(?::[0-9]*)?"
_PATH_ABEMPTY = rf"(?:/{_PCHAR}*)*"
_PATH_ABSOLUTE = rf"/(?:{_PCHAR}+(?:/{_PCHAR}*)*)?"
_TAIL = rf"(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"
_URI = re.compile(rf"[A-Za-z][A-Za-z0-9+\-.]*:(?://{_AUTHORITY}{_PATH_ABEMPTY}"
                  rf"|{_PATH_ABSOLUTE}|{_PCHAR}+(?:/{_PCHAR}*)*|){_TAIL}")
_RELATIVE_REF = re.compile(rf"(?://{_AUTHORITY}{_PATH_ABEMPTY}|{_PATH_ABSOLUTE}"
                           rf"|{_SEGMENT_NZ_NC}(?:/{_PCHAR}*)*|){_TAIL}")
_IP_FUTURE = re.compile(rf"[vV][0-9A-Fa-f]+\.[{_UNRESERVED}{_SUB_DELIMS}:]+")


def is_date(value: str) -> bool:
    match = _DATE.fullmatch(value)
    if match is None:
        return False
    try:
        date(*(int(part) for part in match.groups()))
    except ValueError:
        return False
    return True


def is_time(value: str) -> bool:
    match = _TIME.fullmatch(value)
    if match is None:
        return False
    hour, minute, second = (int(match[i]) for i in (1, 2, 3))
    if hour > 23 or minute > 59 or second > 60:
        return False
    offset = 0
    if match[4] is not None:
        off_hour, off_minute = int(match[5]), int(match[6])
        if off_hour > 23 or off_minute > 59:
            return False
        offset = (off_hour * 60 + off_minute) * (1 if match[4] == "+" else -1)
    if second == 60:  # a leap second is 23:59:60 UTC, nothing else
        return (hour * 60 + minute - offset) % (24 * 60) == 23 * 60 + 59
    return True


def is_date_time(value: str) -> bool:
    day, sep, rest = value[:10], value[10:11], value[11:]
    return sep in ("T", "t") and is_date(day) and is_time(rest)


def is_duration(value: str) -> bool:
    return _DURATION.fullmatch(value) is not None


def is_email(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and domain) and _SPACE_OR_CONTROL.search(value) is None


def is_hostname(value: str) -> bool:
    return (0 < len(value) <= 253
            and all(_LABEL.fullmatch(label) for label in value.split(".")))


def is_ipv4(value: str) -> bool:
    return _IPV4.fullmatch(value) is not None


def is_ipv6(value: str) -> bool:
    if _IPV6_CHARS.fullmatch(value) is None:  # no zone index, nothing non-ASCII
        return False
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def is_uuid(value: str) -> bool:
    return _UUID.fullmatch(value) is not None


def _ip_literal_ok(match: re.Match[str]) -> bool:
    literal = match["ip"]
    return literal is None or is_ipv6(literal) or _IP_FUTURE.fullmatch(literal) is not None


def is_uri(value: str) -> bool:
    match = _URI.fullmatch(value)
    return match is not None and _ip_literal_ok(match)


def is_uri_reference(value: str) -> bool:
    if is_uri(value):
        return True
    match = _RELATIVE_REF.fullmatch(value)
    return match is not None and _ip_literal_ok(match)


def is_json_pointer(value: str) -> bool:
    return _JSON_POINTER.fullmatch(value) is not None


def is_relative_json_pointer(value: str) -> bool:
    return _RELATIVE_JSON_POINTER.fullmatch(value) is not None


#: Every format the gate enforces, and how.
CHECKERS: Mapping[str, Callable[[str], bool]] = {
    "date": is_date,
    "date-time": is_date_time,
    "duration": is_duration,
    "email": is_email,
    "hostname": is_hostname,
    "ipv4": is_ipv4,
    "ipv6": is_ipv6,
    "json-pointer": is_json_pointer,
    "relative-json-pointer": is_relative_json_pointer,
    "time": is_time,
    "uri": is_uri,
    "uri-reference": is_uri_reference,
    "uuid": is_uuid,
}
SUPPORTED_FORMATS: tuple[str, ...] = tuple(sorted(CHECKERS))


def _strings_only(check: Callable[[str], bool]) -> Callable[[object], bool]:
    def checker(instance: object) -> bool:
        return not isinstance(instance, str) or check(instance)
    return checker


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())  # start empty: nothing jsonschema found installed
    for name, check in CHECKERS.items():
        checker.checks(name)(_strings_only(check))
    return checker


#: The checker the gate validates metadata with: exactly :data:`SUPPORTED_FORMATS`.
FORMAT_CHECKER = _format_checker()
