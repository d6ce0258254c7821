"""loom inside Claude Code: ``loom setup`` (:mod:`.setup`) registers the ``loom`` MCP server and installs the
``/task``, ``/proceed``, ``/done`` command files (:mod:`.commands`, package data) and, with ``--hooks``, the
advisory hook scripts (:mod:`.hooks`)."""
