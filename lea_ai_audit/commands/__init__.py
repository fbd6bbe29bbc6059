"""Subcommands of ``lea-audit`` beyond the core ones, one module per area.

``lea_ai_audit.cli`` discovers every module of this package. A module may define any of:

``add_commands(sub, kit)``
    add subparsers (``sub.add_parser(...)`` with ``set_defaults(func=handler)``); a handler
    takes the parsed ``args`` and returns the exit code.
``rewrite_argv(argv) -> argv``
    turn a shorthand into the full command line before it is parsed (``review DIR`` is
    ``review serve DIR``).
``add_audit_options(parser)`` / ``audit_kwargs(args) -> dict``
    options of ``run`` and ``demo``, and the keyword arguments they add to ``audit(...)``.
``write_outputs(args, report, folder) -> str``
    write files beside the report (e.g. the model card) into ``folder``: the new output folder,
    switched into place with the report once every such hook has run (so a fault leaves the
    previous audit whole); returns lines to print.
``after_audit(args, report, out) -> str``
    after the new folder is in place at ``out`` (e.g. append to the ledger, log to MLflow);
    returns lines to print.
``add_gate_options(parser)`` / ``gate_reasons(args, report) -> list[str]``
    options of ``gate`` and reasons to keep it closed (e.g. a missing sign-off).
``after_gate(args, report, opened, reasons) -> str``
    after the verdict (e.g. tag a registered model version); returns lines to print.

Modules import only the standard library at module level: ``lea-audit --help`` stays fast.
Handlers raise ``lea_ai_audit.errors.LeaAuditError`` for bad input (one line, exit 2).
``kit`` holds the CLI's helpers: ``add_verbose``, ``console``, ``print_summary``,
``read_table``, ``EXIT_PASS``, ``EXIT_FAIL``, ``EXIT_USAGE``.
"""
