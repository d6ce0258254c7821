"""Command palette: every action of the current screen, area-prefixed ("gate: accept")."""

from __future__ import annotations

from textual.command import DiscoveryHit, Hit, Hits, Provider


class LoomCommands(Provider):
    def _entries(self):
        screen = self.screen
        entries = list(getattr(screen, "palette_entries", lambda: [])())
        app = self.app
        entries += [
            ("app: settings", "Configuration, secrets, models and projects", app.action_settings),
            ("app: toggle theme", "Switch between the light and the dark theme", app.action_toggle_theme),
            ("app: quit", "Leave the console", app.exit),
        ]
        return entries

    async def discover(self) -> Hits:
        for title, help_text, run in self._entries():
            yield DiscoveryHit(title, run, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, run in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), run, help=help_text)
