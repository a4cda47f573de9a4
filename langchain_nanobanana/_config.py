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
from langchain_nanobanana.errors import ConfigurationError, InvalidRequestError

__all__ = ["Configured", "build_client", "check_fixed_fields", "refuse_unknown"]


def refuse_unknown(component: str, data: Any, allowed: Iterable[str]) -> None:
    """Raise ``TypeError`` for keys of ``data`` not in ``allowed``, with "did you mean".

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
        close = difflib.get_close_matches(str(key), names, n=2, cutoff=0.5)
        hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
        problems.append(f"{key!r}{hint}")
    if problems:
        raise TypeError(
            f"{component} got unknown keyword argument(s) {', '.join(problems)}; "
            f"allowed: {', '.join(names)}"
        )


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
    client: Any,
    api_token: SecretStr | str | None,
    base_url: str | None,
) -> Any:
    """The component's client: ``client`` as given, else a new ``NanoBananaClient`` from
    ``api_token`` / ``base_url`` (each defaulting to the environment).

    Raises:
        ValueError: ``client`` together with ``api_token`` or ``base_url``; a bad ``base_url``.

    """
    from langchain_nanobanana.client import NanoBananaClient

    if client is not None:
        if api_token is not None or base_url is not None:
            raise ValueError(
                f"{component}: pass either client=... or api_token=/base_url=..., not both "
                "(the client already carries its token and base URL)"
            )
        return client
    return NanoBananaClient(api_token, base_url=base_url)


class Configured(BaseModel):
    """Fields and checks every component shares (mixed into the tools, the toolkit and the
    Runnable): ``client`` or ``api_token`` / ``base_url``; unknown keywords refused with "did you
    mean"; the fields named in ``FIXED`` checked with ``ImageRequest`` when built.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    #: Names of the developer-fixed request fields this component checks when built.
    FIXED: ClassVar[tuple[str, ...]] = ("model", "callback_url")

    client: Any = Field(default=None, exclude=True, repr=False)
    """The ``NanoBananaClient`` (default: built from ``api_token`` / ``base_url``)."""
    api_token: SecretStr | None = Field(default=None, exclude=True, repr=False)
    """Token for the default client (``SecretStr``; default ``$ACEDATACLOUD_API_TOKEN``)."""
    base_url: str | None = None
    """Base URL for the default client (default ``$ACEDATACLOUD_API_BASE_URL``)."""

    def __init__(self, **data: Any) -> None:
        # Checked before pydantic sees the input: its errors repeat the whole input dict, which
        # would show ``api_token``. These raise plain TypeError / ValueError naming one field.
        name = type(self).__name__
        refuse_unknown(name, data, type(self).model_fields)
        check_fixed_fields(name, **{field: data.get(field) for field in self.FIXED})
        data["client"] = build_client(
            name, data.get("client"), data.get("api_token"), data.get("base_url")
        )
        super().__init__(**data)

    @property
    def lc_secrets(self) -> dict[str, str]:
        """``api_token`` is read from ``ACEDATACLOUD_API_TOKEN`` when deserialized."""
        return {"api_token": "ACEDATACLOUD_API_TOKEN"}
