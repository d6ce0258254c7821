"""The HTTP control plane (``loom serve``, spec §5): starlette routes over the facade, the guards of
§5.1, server-sent status, and a fleet registry driving every supervised project.

Import-light: starlette and uvicorn load with :mod:`.app` / :mod:`.server`, never at package import."""
