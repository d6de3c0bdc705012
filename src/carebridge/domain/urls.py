"""Where webhooks may go: a pure policy over URLs and the addresses their hosts resolve to.

A webhook URL names a host the deployment will connect to on a tenant's behalf, so an API key
that may register one must not be able to aim the deployment at itself, its neighbours or its
cloud's metadata service (SSRF). :class:`UrlPolicy` refuses, with a reason and never the URL:

- anything but ``https`` (``http`` only for hosts on the development allow-list);
- credentials (``user:pass@``), fragments, whitespace, control characters, backslashes;
- hosts that are, or resolve to, loopback, unspecified, link-local, private, shared (CGNAT),
  cloud-metadata, multicast, broadcast, documentation or otherwise reserved addresses, in every
  spelling: ``127.1``, ``2130706433``, ``0x7f000001``, ``0177.0.0.1``, ``127.0.0.1.``,
  ``[::ffff:127.0.0.1]``, ``[::127.0.0.1]``, NAT64 (``64:ff9b::a00:1``), 6to4 (``2002:a00:1::``)
  and Teredo;
- local and internal names (``localhost``, ``*.localhost``, ``*.internal``, ``*.local``,
  ``metadata.google.internal``, ...).

The allow-list (``CAREBRIDGE_WEBHOOK_ALLOW``: comma-separated host names, addresses and CIDRs)
lets listed hosts through, over ``http`` too; ``carebridge run`` lists loopback so that local
receivers work. :meth:`UrlPolicy.check_url` is the static check at registration and before each
send; :meth:`UrlPolicy.check_address` checks each address a host resolves to, which the
delivery transport does right before it connects to that very address (DNS rebinding between
the check and the connection cannot pass).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from carebridge.errors import UrlRefused as UrlRefused

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_ENV: Final = "CAREBRIDGE_WEBHOOK_ALLOW"
"""The setting that names the development allow-list."""

LOOPBACK: Final = "127.0.0.0/8,::1,localhost"
"""The allow-list ``carebridge run`` sets, so local receivers work."""

HINT: Final = f"({ALLOW_ENV} allows listed hosts for development)"


_METADATA: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, ...
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.123",  # AWS time sync
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::123",
        "100.100.100.200",  # Alibaba Cloud
        "168.63.129.16",  # Azure wire server (a public address)
        "192.0.0.192",  # Oracle Cloud
    )
)
_NAT64: Final = (
    ipaddress.IPv6Network("64:ff9b::/96"),
    ipaddress.IPv6Network("64:ff9b:1::/48"),
)
_SHARED: Final = ipaddress.IPv4Network("100.64.0.0/10")
_THIS_NETWORK: Final = ipaddress.IPv4Network("0.0.0.0/8")
_BROADCAST: Final = ipaddress.IPv4Address("255.255.255.255")
_V4_COMPATIBLE: Final = ipaddress.IPv6Network("::/96")

_LOCAL_NAMES: Final = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.goog",
        "metadata.google.internal",
        "instance-data",
        "instance-data.ec2.internal",
        "kubernetes.default",
        "kubernetes.default.svc",
    }
)
_LOCAL_SUFFIXES: Final = (
    ".localhost",
    ".localdomain",
    ".local",
    ".internal",
    ".intranet",
    ".lan",
    ".home.arpa",
    ".svc",
    ".cluster.local",
)
_LABEL: Final = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)$")
_NUMERIC: Final = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_BAD_CHARS: Final = re.compile(r"[\s\x00-\x1f\x7f\\]")


# --- addresses ------------------------------------------------------------------------------


def _ipv4_part(text: str) -> int | None:
    """One part of an inet_aton address: decimal, ``0x`` hex or ``0``-led octal."""
    if text.startswith(("0x", "0X")):
        digits = text[2:]
        return int(digits, 16) if digits else 0
    if len(text) > 1 and text.startswith("0"):
        return int(text, 8) if re.fullmatch(r"[0-7]+", text) else None
    return int(text) if text.isdigit() else None


def parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address an inet_aton-style host spells (``127.1``, ``2130706433``,
    ``0x7f000001``, ``0177.0.0.1``), else None when the host is not numeric at all.

    Raises:
        UrlRefused: the host's last label is numeric but spells no address (resolvers would
            guess differently, so it is refused outright).
    """
    parts = host.lower().split(".")
    if not _NUMERIC.match(parts[-1]):
        return None
    if len(parts) > 4 or not all(_NUMERIC.match(p) for p in parts):
        raise UrlRefused("the url's host is not a valid IPv4 address")
    values = [_ipv4_part(p) for p in parts]
    widths = [8] * (len(parts) - 1) + [32 - 8 * (len(parts) - 1)]
    number = 0
    for value, width in zip(values, widths, strict=True):
        if value is None or value >= 1 << width:
            raise UrlRefused("the url's host is not a valid IPv4 address")
        number = (number << width) | value
    return ipaddress.IPv4Address(number)


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries: mapped, compatible, NAT64 or 6to4."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    last = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if any(address in net for net in _NAT64):
        return last
    if address in _V4_COMPATIBLE and int(address) > 1:
        return last
    return None


def blocked(address: IPAddress) -> str | None:
    """Why deliveries may not go to ``address`` (a short noun phrase), or None if it is a public
    unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            address = ipaddress.IPv6Address(address.compressed.split("%", 1)[0])
        inner = _embedded_ipv4(address)
        if inner is not None:
            return blocked(inner)
    if address in _METADATA:
        return "cloud metadata"
    if address.is_loopback:
        return "loopback"
    if address.is_unspecified or (
        isinstance(address, ipaddress.IPv4Address) and address in _THIS_NETWORK
    ):
        return "unspecified"
    if address.is_link_local:
        return "link-local"
    if isinstance(address, ipaddress.IPv4Address) and address in _SHARED:
        return "shared (carrier-grade NAT)"
    if address == _BROADCAST:
        return "broadcast"
    if address.is_multicast:
        return "multicast"
    if address.is_private:
        return "private"
    if address.is_reserved or not address.is_global:
        return "reserved"
    return None


def parse_address(host: str) -> IPAddress | None:
    """The address a URL's host spells (IPv6 without brackets, IPv4 in any inet_aton form), or
    None for a name."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise UrlRefused("the url's host is not a valid IPv6 address") from None
    return parse_ipv4(host)


# --- the policy -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A checked URL's parts: where a delivery connects."""

    scheme: str
    host: str  # lower case, without a trailing dot or brackets
    port: int
    address: IPAddress | None  # when the host is an address
    listed: bool  # on the allow-list by name or address: its resolutions are trusted too


@dataclass(frozen=True)
class UrlPolicy:
    """Which webhook URLs are refused; ``names`` and ``networks`` are the development
    allow-list (empty: public ``https`` hosts only)."""

    names: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> UrlPolicy:
        """The policy of an allow-list setting: comma-separated host names, addresses and CIDRs
        (``127.0.0.0/8,::1,localhost``); empty or None allows no exceptions.

        Raises:
            ValueError: an entry is neither a network nor a host name.
        """
        names: set[str] = set()
        networks: list[Network] = []
        for raw in (text or "").split(","):
            entry = raw.strip().lower().rstrip(".")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if not all(_LABEL.match(label) for label in entry.split(".")):
                raise ValueError(f"{ALLOW_ENV}: {entry!r} is neither a host name nor a network")
            names.add(entry)
        return cls(frozenset(names), tuple(networks))

    def lists(self, address: IPAddress) -> bool:
        """Whether ``address`` is on the allow-list (an IPv4-mapped address as its IPv4)."""
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            if address.scope_id:
                candidates = [ipaddress.IPv6Address(address.compressed.split("%", 1)[0])]
            if address.ipv4_mapped is not None:
                candidates.append(address.ipv4_mapped)
        return any(
            a in net for a in candidates for net in self.networks if a.version == net.version
        )

    def check_url(self, url: str) -> Target:
        """The parts of a URL deliveries may go to.

        Raises:
            UrlRefused: why not (the message never repeats the URL).
        """
        if _BAD_CHARS.search(url):
            raise UrlRefused("the url must not contain whitespace, control characters or '\\'")
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise UrlRefused("the url is not an absolute https URL with a valid port") from None
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.netloc:
            raise UrlRefused("the url must be an absolute https URL")
        if "@" in parts.netloc:
            raise UrlRefused("the url must not carry credentials (user:password@)")
        if parts.fragment or url.endswith("#"):
            raise UrlRefused("the url must not carry a fragment")
        if port == 0:
            raise UrlRefused("the url's port must not be 0")
        host = _host(parts.netloc, parts.hostname)
        address = parse_address(host)
        listed = self.listed(host)
        if not listed:
            if address is not None:
                reason = blocked(address)
                if reason:
                    raise UrlRefused(f"the url's host is not a public address ({reason}) {HINT}")
            elif host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES) or "." not in host:
                raise UrlRefused(f"the url's host is a local or internal name {HINT}")
            if scheme != "https":
                raise UrlRefused(f"the url must be https {HINT}")
        return Target(
            scheme=scheme,
            host=host,
            port=port or (443 if scheme == "https" else 80),
            address=address,
            listed=listed,
        )

    def listed(self, host: str) -> bool:
        """Whether a host (a name or an address, as a URL or a connection names it) is on the
        allow-list."""
        name = host.strip("[]").lower()
        name = name[:-1] if name.endswith(".") else name
        if name in self.names:
            return True
        try:
            address = parse_address(name)
        except UrlRefused:
            return False
        return address is not None and self.lists(address)

    def check_address(self, address: IPAddress, *, listed: bool = False) -> None:
        """Check one address a URL's host resolved to; ``listed`` when the host itself is on the
        allow-list (whatever it resolves to is then trusted).

        Raises:
            UrlRefused: the address is one deliveries may not go to.
        """
        if listed or self.lists(address):
            return
        reason = blocked(address)
        if reason:
            raise UrlRefused(
                f"the url's host resolves to an address that is not public ({reason}) {HINT}"
            )


def _host(netloc: str, hostname: str | None) -> str:
    """A URL's host, lower case, brackets and one trailing dot removed, IDNA-encoded; refused
    if it is no valid host."""
    if not hostname:
        raise UrlRefused("the url must name a host")
    if netloc.startswith("[") or "[" in netloc:
        if "%" in hostname:
            raise UrlRefused("the url's host must not carry an IPv6 zone")
        return hostname
    host = hostname[:-1] if hostname.endswith(".") else hostname
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise UrlRefused("the url's host is not a valid host name") from None
    labels = ascii_host.split(".")
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise UrlRefused("the url's host is not a valid host name")
    return ascii_host
