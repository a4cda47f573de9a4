"""``nanobanana models`` and ``nanobanana completion``: nothing here sends a request or needs a
token.
"""

from __future__ import annotations

import argparse
from typing import Any

from .output import EXIT_OK, CLIError, Output

__all__ = ["cmd_completion", "cmd_models", "model_rows"]


def model_rows() -> list[dict[str, Any]]:
    """One dict per model the API accepts (``langchain_nanobanana.models.MODELS``): ``name``,
    ``description``, ``gemini_model``, ``resolutions`` (``["1K"]``, or ``["1K", "2K", "4K"]`` for
    the high-resolution models), ``aspect_ratios`` (every model takes all of them), ``default``
    (the API's default model).
    """
    from langchain_nanobanana.models import ASPECT_RATIOS, DEFAULT_MODEL, MODELS, RESOLUTIONS

    return [
        {
            "name": info.name,
            "description": info.description,
            "gemini_model": info.gemini_model,
            "resolutions": list(RESOLUTIONS) if info.high_resolution else [RESOLUTIONS[0]],
            "aspect_ratios": list(ASPECT_RATIOS),
            "default": info.name == DEFAULT_MODEL,
        }
        for info in MODELS.values()
    ]


def cmd_models(args: argparse.Namespace, output: Output) -> int:
    """``nanobanana models [--json]``: each model with its resolutions and aspect ratios (a table,
    or one JSON object per line).
    """
    rows = model_rows()
    if output.json_lines:
        for row in rows:
            output.record(row)
        return EXIT_OK
    table = [
        (
            str(row["name"]) + (" (default)" if row["default"] else ""),
            ",".join(map(str, row["resolutions"])),
            ",".join(map(str, row["aspect_ratios"])),
        )
        for row in rows
    ]
    width = max(len(name) for name, _, _ in table)
    output.result(f"{'MODEL':<{width}}  {'RESOLUTIONS':<11}  ASPECT RATIOS")
    for name, sizes, ratios in table:
        output.result(f"{name:<{width}}  {sizes:<11}  {ratios}")
    return EXIT_OK


def cmd_completion(args: argparse.Namespace, output: Output) -> int:
    """``nanobanana completion bash|zsh|fish``: print a completion script generated from the
    parser by the ``shtab`` library (the extra ``completion``).

    Raises:
        CLIError: (exit 2) ``shtab`` is not installed (the message says what to install), or
            the installed ``shtab`` cannot write that shell's script.

    """
    try:
        import shtab
    except ImportError:
        raise CLIError(
            "shell completion needs the shtab package: pip install "
            "'langchain-nanobanana[completion]' (or pip install shtab)"
        ) from None
    from .parser import build_parser

    parser = build_parser()
    try:
        script = shtab.complete(parser, shell=args.shell)
    except NotImplementedError:
        raise CLIError(
            f"the installed shtab {getattr(shtab, '__version__', '?')} cannot write {args.shell} "
            "completion: pip install 'shtab>=1.9'"
        ) from None
    output.result(script.rstrip("\n"))
    return EXIT_OK
