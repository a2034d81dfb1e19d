"""Field types the config models share: DNS names and IP addresses, with readable errors."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def _dns_label(value: str) -> str:
    if len(value) > 63 or not DNS_LABEL.match(value):
        raise ValueError(
            f"{value!r} is not a DNS label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not all(DNS_LABEL.match(label) for label in value.split(".")):
        raise ValueError(f"{value!r} is not a DNS subdomain name (DNS labels joined by '.')")
    return value


def _ip_address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValueError(f"{value!r} is not an IP address") from None


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsSubdomain = Annotated[str, AfterValidator(_dns_subdomain)]
IPAddress = Annotated[str, AfterValidator(_ip_address)]


class Strict(BaseModel):
    """Config models: unknown keys are errors, values are read-only."""

    model_config = ConfigDict(extra="forbid", frozen=True)
