"""In-memory keyring backends for tests: ``MemoryKeyring`` stores in a dict; ``Keyring`` (what
``PYTHON_KEYRING_BACKEND`` points at) also writes a line to ``$LOOM_TATTLE`` each time keyring instantiates
it, so a test can tell whether loom probed the keyring at all.
"""

from __future__ import annotations

import os

from keyring.backend import KeyringBackend


class MemoryKeyring(KeyringBackend):
    priority = 10

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service, username):
        return self.store.get((service, username))

    def set_password(self, service, username, password):
        self.store[(service, username)] = password

    def delete_password(self, service, username):
        self.store.pop((service, username), None)


class Keyring(MemoryKeyring):
    priority = 1

    def __init__(self) -> None:
        super().__init__()
        mark = os.environ.get("LOOM_TATTLE")
        if mark:
            with open(mark, "a", encoding="utf-8") as fh:
                fh.write("probed\n")
