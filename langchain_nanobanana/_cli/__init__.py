"""The ``nanobanana`` command line, split by job (the entry point is
:func:`langchain_nanobanana.cli.main`; a subcommand's module is imported only when it runs).

Light (what ``nanobanana --help`` imports):

* ``output`` — exit codes, ``CLIError``, the output streams, the line schema, how texts are shown.
* ``options`` / ``parser`` — the option groups, examples and the parser (``COMMANDS`` dispatch).

Per subcommand:

* ``single`` — ``generate``/``edit`` (stdin, ``--no-wait``) and ``wait``.
* ``commands`` — ``task`` and ``batch`` (reading its input, checking keys, the manifest).
* ``batch`` / ``ledger`` / ``settle`` — the resumable batch run: a bounded executor plus the
  client's poller; the rows' lines and counts; recording a run cut short.
* ``rows`` / ``source`` — one row's columns and request; reading JSONL/CSV/stdin before any request.
* ``info`` — ``models`` and ``completion``.
* ``report``, ``report_page`` — ``report`` (and ``batch --report``): the manifest as one HTML page.
* ``common`` — the client, the journal and the output folder set up from the options.
* ``admin`` — ``journal`` and ``simulate``.
"""
