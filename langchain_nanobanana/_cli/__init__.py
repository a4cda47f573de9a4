"""The ``nanobanana`` command line, split by concern (the entry point is
:func:`langchain_nanobanana.cli.main`).

* ``common`` — exit codes, output streams, the row/manifest line schema, errors to statuses.
* ``rows`` — reading and validating a batch file (JSONL or CSV) before any request.
* ``batch`` — the resumable ``batch`` run (bounded submissions, shared polling, downloads).
* ``commands`` — ``generate``/``edit``, ``task``, ``journal``, ``simulate``.
* ``report``, ``report_page`` — ``report`` (and ``batch --report``): the manifest as one HTML page.
"""
