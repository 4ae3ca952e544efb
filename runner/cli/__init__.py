"""The command line: `runner <verb>`, one module per verb; only the chosen verb is imported.

`main` (`runner.cli.main`) parses the arguments and dispatches; `errors` turns exceptions into
one-line messages and exit codes (an internal error's traceback goes to a log file);
`_workspace` finds the spec folder, environment, registry and provider the verbs share.

May import: everything else in runner (the CLI is the last layer). Import from the modules.
"""

__all__: list[str] = []
