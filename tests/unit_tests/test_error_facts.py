"""Every exported error class carries its facts, and every decision is read from them.

The facts (``billed``, ``retryable``, ``model_fixable``, ``exit_code``, ``row_status``,
``read_attempts``) are class attributes; this walks every error class the package exports (the
top-level names, ``langchain_nanobanana.errors`` and the journal's) and checks that each fact is
set, of the right kind, and consistent with the others and with the class's documented meaning.
"""

from __future__ import annotations

import inspect

import pytest

import langchain_nanobanana
import langchain_nanobanana.errors as errors_module
import langchain_nanobanana.journal as journal_module
from langchain_nanobanana import (
    SAFE_TO_RETRY,
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    InsufficientBalanceError,
    InvalidImageError,
    InvalidRequestError,
    NanoBananaError,
    PermissionDeniedError,
    RateLimitError,
    SubmissionUncertainError,
    TaskFailedError,
    TaskTimeoutError,
)
from langchain_nanobanana.errors import error_classes, on_read

FACTS = ("billed", "retryable", "model_fixable", "exit_code", "row_status", "read_attempts")


def exported_error_classes() -> list[type[NanoBananaError]]:
    found: dict[str, type[NanoBananaError]] = {}
    for module in (langchain_nanobanana, errors_module, journal_module):
        for name in module.__all__:
            value = getattr(module, name)
            if inspect.isclass(value) and issubclass(value, BaseException):
                assert issubclass(value, NanoBananaError), f"{name} is not a NanoBananaError"
                found[name] = value
    return list(found.values())


CLASSES = exported_error_classes()


def test_every_error_class_of_errors_py_is_exported() -> None:
    exported = set(CLASSES)
    assert set(error_classes()) <= exported
    assert len(CLASSES) >= 20


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_each_fact_is_set_on_the_class_and_well_typed(cls: type[NanoBananaError]) -> None:
    own = {name for klass in cls.__mro__ if klass is not Exception for name in vars(klass)}
    for fact in FACTS:
        assert fact in own, f"{cls.__name__} lacks {fact}"
    assert cls.billed in ("no", "maybe", "yes")
    assert isinstance(cls.retryable, bool)
    assert isinstance(cls.model_fixable, bool)
    assert cls.exit_code in (1, 2, 3, 4)
    assert cls.row_status in ("failed", "uncertain", "invalid", "pending")
    assert cls.read_attempts is None or (
        isinstance(cls.read_attempts, int) and cls.read_attempts >= 1
    )


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_facts_are_consistent(cls: type[NanoBananaError]) -> None:
    # exit 4 is "uncertain": exactly the errors after which a task may exist unrecorded
    assert (cls.exit_code == 4) == (cls.row_status == "uncertain")
    if cls.exit_code == 4:
        assert cls.billed == "maybe" and not cls.retryable and not cls.model_fixable
    # exit 2 means bad input or an unusable journal: nothing was sent
    if cls.exit_code == 2:
        assert cls.billed == "no"
    if cls.row_status == "invalid":
        assert cls.exit_code == 2 and cls.billed == "no"
    # a task that exists is never "invalid" and never freed for resubmission
    if cls.billed == "yes":
        assert cls.row_status in ("failed", "pending") and not cls.retryable
    # "retryable" on a paid submission is only possible when nothing was billed
    if cls.retryable:
        assert cls.billed == "no"
    # the model can only fix what it caused; configuration and account problems stop the run
    if cls.exit_code == 3:
        assert not cls.model_fixable and cls.billed == "no"


def test_the_documented_facts_of_the_main_classes() -> None:
    table: dict[type[NanoBananaError], tuple[str, bool, bool, int]] = {
        RateLimitError: ("no", True, True, 1),
        APIConnectionError: ("no", True, False, 1),
        AuthenticationError: ("no", False, False, 3),
        InsufficientBalanceError: ("no", False, False, 3),
        PermissionDeniedError: ("no", False, False, 3),
        SubmissionUncertainError: ("maybe", False, False, 4),
        TaskFailedError: ("yes", False, True, 1),
        TaskTimeoutError: ("yes", False, True, 1),
        InvalidRequestError: ("no", False, True, 2),
        InvalidImageError: ("no", False, True, 2),
        ConfigurationError: ("no", False, False, 3),
    }
    for cls, (billed, retryable, fixable, code) in table.items():
        assert (cls.billed, cls.retryable, cls.model_fixable, cls.exit_code) == (
            billed,
            retryable,
            fixable,
            code,
        ), cls.__name__


def test_safe_to_retry_is_derived_from_the_facts() -> None:
    expected = {c for c in CLASSES if c.billed == "no" and c.retryable}
    assert set(SAFE_TO_RETRY) >= {c for c in expected if c in error_classes()}
    for cls in SAFE_TO_RETRY:
        assert cls.billed == "no" and cls.retryable  # type: ignore[attr-defined]
    assert RateLimitError in SAFE_TO_RETRY and APIConnectionError in SAFE_TO_RETRY


def test_on_read_turns_maybe_billed_into_a_repeatable_read() -> None:
    server = on_read(errors_module.ServerError("x", status_code=503), task_id="t1")
    assert (server.billed, server.retryable, server.task_id) == ("yes", True, "t1")
    assert errors_module.ServerError.retryable is False  # the class is untouched
    auth = on_read(AuthenticationError("x", status_code=401))
    assert (auth.billed, auth.retryable) == ("yes", False)


def test_no_module_keeps_its_own_list_of_error_classes() -> None:
    """The rules read the facts: no tuple/set of error classes in the package's policy modules."""
    import ast
    import pathlib

    root = pathlib.Path(langchain_nanobanana.__file__).parent
    names = {c.__name__ for c in CLASSES} | {"ValidationError", "ValueError"}
    offenders = []
    for path in root.rglob("*.py"):
        if "testing" in path.parts:
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Tuple, ast.Set, ast.List)):
                elts = [e.id for e in node.elts if isinstance(e, ast.Name)]
                if len(elts) >= 2 and sum(e in names for e in elts) >= 2:
                    offenders.append(f"{path.relative_to(root)}:{node.lineno}: {elts}")
    assert offenders == []


def test_the_read_policy_statuses_are_derived_from_the_facts() -> None:
    from langchain_nanobanana._core.classify import read_retry_statuses

    statuses = read_retry_statuses()
    assert statuses == frozenset(range(500, 600))  # every 5xx: ServerError, retryable on a read
    assert not statuses & {400, 401, 402, 403, 404, 429}
