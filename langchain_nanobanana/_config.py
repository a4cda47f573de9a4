"""Configuration of the LangChain components (tools, toolkit, Runnable): checked when built.

A typo in a keyword (``aspect=``) is an error with "did you mean", not a silently billed default;
fixed fields (``model``, ``callback_url``, the Runnable's ``aspect_ratio`` / ``resolution`` /
``count``) are checked with :class:`~langchain_nanobanana.models.ImageRequest`, the one validator;
``api_token`` / ``base_url`` build the component's client (like ``ChatOpenAI(api_key=...)``), and
passing them together with ``client`` is an error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from langchain_nanobanana._request import build_request
from langchain_nanobanana.client import NanoBananaClient
from langchain_nanobanana.errors import ConfigurationError, InvalidRequestError

__all__ = [
    "SYNONYMS",
    "Configured",
    "build_client",
    "check_fixed_fields",
    "refuse_unknown",
    "take_api_key",
]


#: Keywords users bring from other packages, and where each belongs (the knob is not ours to
#: take on this component, or it has another name here).
SYNONYMS: dict[str, str] = {
    "max_wait": "the client: client=NanoBananaClient(max_wait=...)",
    "poll_interval": "the client: client=NanoBananaClient(poll_interval=...)",
    "max_poll_interval": "the client: client=NanoBananaClient(max_poll_interval=...)",
    "sync_timeout": "the client: client=NanoBananaClient(mode='sync', sync_timeout=...)",
    "mode": "the client: client=NanoBananaClient(mode=...)",
    "journal": "the client: client=NanoBananaClient(journal=...)",
    "rate_limit": "the client: client=NanoBananaClient(rate_limit=...)",
    "session": "the client: client=NanoBananaClient(session=...)",
    "token": "api_token (or its alias api_key)",
    "key": "api_token (or its alias api_key)",
    "api_base": "base_url",
    "endpoint": "base_url",
    "url": "base_url",
    "request_timeout": "timeout",
    "retries": "max_retries",
}
#: How alike a typo and a name must be for "did you mean" (difflib ratio), unless one is a
#: prefix of the other (``aspect`` -> ``aspect_ratio``).
_CLOSE = 0.8


def _close_names(key: str, names: list[str]) -> list[str]:
    prefixed = [n for n in names if len(key) >= 4 and (n.startswith(key) or key.startswith(n))]
    similar = difflib.get_close_matches(key, names, n=2, cutoff=_CLOSE)
    return list(dict.fromkeys([*prefixed, *similar]))[:2]


def refuse_unknown(component: str, data: Any, allowed: Iterable[str]) -> None:
    """Raise ``TypeError`` for keys of ``data`` not in ``allowed``: "did you mean" only for close
    names (a prefix, or difflib ratio >= 0.8), and :data:`SYNONYMS` say where a knob belongs.

    Raises:
        TypeError: Naming the component, each unknown keyword and the closest allowed names.

    """
    if not isinstance(data, Mapping):
        return
    names = sorted(set(allowed))
    problems = []
    for key in data:
        if key in names:
            continue
        where = SYNONYMS.get(str(key))
        if where is not None and where.split(" ")[0] in names:
            hint = f" (did you mean {where.split(' ')[0]!r}?)"
        elif where is not None:
            hint = f" (it belongs to {where})"
        else:
            close = _close_names(str(key), names)
            hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        problems.append(f"{key!r}{hint}")
    if problems:
        raise TypeError(
            f"{component} got unknown keyword argument(s) {', '.join(problems)}; "
            f"allowed: {', '.join(names)}"
        )


def take_api_key(component: str, data: dict[str, Any]) -> None:
    """Move ``api_key`` (the name other LangChain partner packages use) to ``api_token``.

    Raises:
        ConfigurationError: Both were given.

    """
    if "api_key" not in data:
        return
    if data.get("api_token") is not None:
        raise ConfigurationError(f"{component}: pass api_token=... or api_key=..., not both")
    data["api_token"] = data.pop("api_key")


def check_fixed_fields(component: str, **fields: Any) -> None:
    """Validate developer-fixed request fields now, as ``ImageRequest`` would at call time.

    Raises:
        ConfigurationError: Naming the component, the field, the value and what is allowed
            (a ``ValueError``).

    """
    given = {k: v for k, v in fields.items() if v is not None}
    if not given:
        return
    try:
        build_request("generate", "configuration check", **given)
    except InvalidRequestError as exc:
        raise ConfigurationError(f"{component}: {exc.message}") from None


def build_client(
    component: str,
    client: NanoBananaClient | None,
    api_token: SecretStr | str | None,
    base_url: str | None,
    *,
    timeout: float | None = None,
    max_retries: int | None = None,
) -> NanoBananaClient:
    """The component's client: ``client`` as given, else a new ``NanoBananaClient`` from
    ``api_token`` / ``base_url`` (each defaulting to the environment), ``timeout`` and
    ``max_retries`` (``None``: the client's defaults, 60.0 s and 2).

    Raises:
        ConfigurationError: ``client`` together with a setting it already carries; a bad
            ``base_url``, ``timeout`` or ``max_retries`` (a ``ValueError``).
        TypeError: ``client`` is not a ``NanoBananaClient``.

    """
    if client is not None:
        given = {
            "api_token": api_token,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        clash = [name for name, value in given.items() if value is not None]
        if clash:
            raise ConfigurationError(
                f"{component}: pass either client=... or {'/'.join(clash)}=..., not both "
                "(the client already carries its own; set them on NanoBananaClient(...))"
            )
        if not isinstance(client, NanoBananaClient):
            raise TypeError(
                f"{component}: client={type(client).__name__} is not a NanoBananaClient"
            )
        return client
    options: dict[str, Any] = {}
    if timeout is not None:
        options["timeout"] = timeout
    if max_retries is not None:
        options["max_retries"] = max_retries
    return NanoBananaClient(api_token, base_url=base_url, **options)


class Configured(BaseModel):
    """Fields and checks every component shares (mixed into the tools, the toolkit and the
    Runnable): ``client`` or ``api_token`` / ``base_url``; unknown keywords refused with "did you
    mean"; the fields named in ``FIXED`` checked with ``ImageRequest`` when built.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    #: Names of the developer-fixed request fields this component checks when built.
    FIXED: ClassVar[tuple[str, ...]] = ("model", "callback_url")

    client: NanoBananaClient = Field(default=None, exclude=True, repr=False)  # type: ignore[assignment]  # built in __init__
    """The ``NanoBananaClient`` (default: built from ``api_token`` / ``base_url`` /
    ``timeout`` / ``max_retries``)."""
    api_token: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """Token for the default client (``SecretStr``; default ``$ACEDATACLOUD_API_TOKEN``); also
    accepted as ``api_key``, as other LangChain partner packages name it."""
    base_url: str | None = None
    """Base URL for the default client (default ``$ACEDATACLOUD_API_BASE_URL``)."""
    timeout: float | None = None
    """Seconds per HTTP request of the default client (``None``: 60.0)."""
    max_retries: int | None = None
    """Retry bound of the default client's retry policies (``None``: 2)."""

    def __init__(self, **data: Any) -> None:
        # Checked before pydantic sees the input: its errors repeat the whole input dict, which
        # would show ``api_token``. These raise plain TypeError / ValueError naming one field.
        name = type(self).__name__
        take_api_key(name, data)
        refuse_unknown(name, data, type(self).model_fields)
        check_fixed_fields(name, **{field: data.get(field) for field in self.FIXED})
        data["client"] = build_client(
            name,
            data.get("client"),
            data.get("api_token"),
            data.get("base_url"),
            timeout=data.get("timeout"),
            max_retries=data.get("max_retries"),
        )
        super().__init__(**data)

    @property
    def lc_secrets(self) -> dict[str, str]:
        """``api_token`` is read from ``ACEDATACLOUD_API_TOKEN`` when deserialized."""
        return {"api_token": "ACEDATACLOUD_API_TOKEN"}
