"""``python -m langchain_nanobanana``: the ``nanobanana`` command line (see
:mod:`langchain_nanobanana.cli`).
"""

from langchain_nanobanana.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
