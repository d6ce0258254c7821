"""Command palette: every action of the current screen, area-prefixed ("gate: accept")."""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider


def palette_entries(app, screen) -> list[tuple[str, str, object]]:
    """(title, help, callable) for the screen's actions, then the app's (the help screen names them too)."""
    entries = list(getattr(screen, "palette_entries", lambda: [])())
    entries += [
        ("app: settings", "Configuration, secrets, models and projects", app.action_settings),
        ("app: toggle theme", "Switch between the light and the dark theme", app.action_toggle_theme),
        ("app: help", "Every key of this screen and the global ones", app.action_help),
        ("app: quit", "Leave the console (asks first while drives run)", app.action_quit),
    ]
    return entries


class LoomCommands(Provider):
    def _entries(self):
        return palette_entries(self.app, self.screen)

    async def discover(self) -> Hits:
        for title, help_text, run in self._entries():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)
