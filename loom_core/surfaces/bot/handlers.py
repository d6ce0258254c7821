"""The bot's commands and buttons (spec §7): what each one asks the plane and says back. A mixin of
:class:`~loom_core.surfaces.bot.telegram.TelegramBot`, which brings the plumbing (``plane``, ``say``, ``state``,
``link``, ``app``)."""

from __future__ import annotations

import contextlib
from typing import Any

from loom_core.errors import GateAlreadyAnswered, LoomError
from loom_core.surfaces.bot import views

STALE = ("GATE_ALREADY_ANSWERED", "NO_PARKED_GATE", "NO_PENDING_GATE", "GATE_EVENT_STALE", "STALE_GATE_EVENT",
         "NO_ACTIVE_TASK")
DECIDED = {"ga": ("accept", "approved"), "gx": ("abandon", "abandoned")}
NO_PROJECT = "No active project: pick one with /projects first."


class Handlers:
    """Commands, free text and taps; every plane call goes through ``self.plane`` (off the event loop)."""

    app: Any
    link: Any
    state: Any

    # ---------------------------------------------------------------- commands
    async def cmd_start(self, update: Any, context: Any) -> None:
        chat = update.effective_chat.id
        if self.state.notice:
            await self.say(chat, f"⚠️ {self.state.notice}")
            self.state.notice = None
        active = self.active(chat)
        tail = f"\n\nActive project: {active['name']}" if active else "\n\nStart with /projects."
        await self.say(chat, views.HELP + tail)

    async def cmd_help(self, update: Any, context: Any) -> None:
        await self.say(update.effective_chat.id, views.HELP)

    async def cmd_projects(self, update: Any, context: Any) -> None:
        chat = update.effective_chat.id
        try:
            rows = await self.plane(self.link.workspace)
        except LoomError as exc:
            await self.say(chat, views.error(exc))
            return
        self.state.chat(chat)["picker"] = [{"id": r.get("id"), "name": views.name_of(r)} for r in rows]
        self.state.save()
        text, buttons = views.picker(rows)
        await self.say(chat, text, buttons)

    async def cmd_status(self, update: Any, context: Any) -> None:
        await self.send_status(update.effective_chat.id, None)

    async def cmd_plan(self, update: Any, context: Any) -> None:
        await self.send_plan(update.effective_chat.id, None)

    async def cmd_cancel(self, update: Any, context: Any) -> None:
        await self.confirm_cancel(update.effective_chat.id, None)

    async def on_text(self, update: Any, context: Any) -> None:
        """A rejection note when one is awaited, else a new task for the active project."""
        chat, text = update.effective_chat.id, (update.effective_message.text or "").strip()
        st = self.state.chat(chat)
        waiting = st.get("awaiting_reason")
        if waiting and text:
            st["awaiting_reason"] = None
            self.state.save()
            await self.decide(chat, waiting["project"], waiting["gate_event_id"], "reject", text)
            return
        active = self.active(chat)
        if not active:
            await self.say(chat, NO_PROJECT)
            return
        if not text:
            return
        docker = False if await self.plane(self.link.docker_available) else None
        st["pending_task"] = {"project": active["id"], "name": active["name"], "task": text, "docker": docker}
        self.state.save()
        await self.say(chat, views.pending_text(active["name"], text, docker), views.complexity_keyboard(docker))

    # ---------------------------------------------------------------- buttons
    async def on_tap(self, update: Any, context: Any) -> None:
        """Every tap is acknowledged once (a toast when there is something short to say)."""
        query = update.callback_query
        chat = update.effective_chat.id
        action, arg = views.parse(query.data)
        toast: str | None = None
        try:
            toast = await self.tap(chat, query, action, arg)
        except LoomError as exc:
            toast = f"{exc.code}: {exc}"[:190]
        finally:
            await query.answer(toast)

    async def tap(self, chat: int, query: Any, action: str, arg: str | None) -> str | None:
        st = self.state.chat(chat)
        if action == "sp":
            return await self.select(chat, query, arg)
        if action == "cx":
            return await self.submit(chat, query, arg)
        if action == "dk":
            pending = st.get("pending_task")
            if not pending or pending.get("docker") is None:
                return "nothing to toggle"
            pending["docker"] = not pending["docker"]
            self.state.save()
            await query.edit_message_text(views.pending_text(pending["name"], pending["task"], pending["docker"]),
                                          reply_markup=self.markup(views.complexity_keyboard(pending["docker"])))
            return f"Docker {'on' if pending['docker'] else 'off'}"
        if action in DECIDED and arg:
            pid = self.state.gate_project(chat, arg) or (self.active(chat) or {}).get("id")
            return await self.decide(chat, pid, arg, DECIDED[action][0], None, query=query)
        if action == "gr" and arg:
            pid = self.state.gate_project(chat, arg) or (self.active(chat) or {}).get("id")
            st["awaiting_reason"] = {"project": pid, "gate_event_id": arg, "prompt_message_id": None}
            self.state.save()
            st["awaiting_reason"]["prompt_message_id"] = await self.ask_reason(chat)
            self.state.save()
            return "reply with your note"
        if action == "pl":
            await self.send_plan(chat, arg)
            return None
        if action == "st":
            await self.send_status(chat, arg)
            return None
        if action in ("pm", "pu"):
            await self.ship(chat, arg, "merge" if action == "pm" else "push")
            return None
        if action == "cn":
            await self.confirm_cancel(chat, arg)
            return None
        if action == "cy":
            return await self.cancel(chat, query, arg)
        if action == "cnx":
            await query.edit_message_text("Kept: nothing was cancelled.")
            return "kept"
        return "unknown button"

    async def select(self, chat: int, query: Any, arg: str | None) -> str:
        st = self.state.chat(chat)
        picker = st.get("picker") or []
        if arg is None or not arg.isdigit() or int(arg) >= len(picker):
            return "that list is out of date: /projects again"
        pick = picker[int(arg)]
        st["active_project"] = {"id": pick["id"], "name": pick["name"]}
        try:  # an end that happened before is not news
            model = (await self.plane(self.link.project_row, pick["id"]))["status"]
            if key := views.terminal_key(model):
                self.state.mark_terminal(chat, pick["id"], key)
        except LoomError:
            pass
        self.state.save()
        await query.edit_message_text(f"✅ Active project: {pick['name']}\nSend a task as text, or /status.")
        return f"active: {pick['name']}"

    async def submit(self, chat: int, query: Any, complexity: str | None) -> str:
        st = self.state.chat(chat)
        pending = st.get("pending_task")
        if not pending:
            return "no task waits: send its text first"
        try:
            got = await self.plane(self.link.submit_task, pending["project"], pending["task"],
                                   complexity=None if complexity in (None, "auto") else complexity,
                                   docker=pending.get("docker"))
        except LoomError as exc:  # the task stays pending: pick again (or toggle Docker) to retry
            docker = pending.get("docker")
            again = views.pending_text(pending["name"], pending["task"], docker)
            await query.edit_message_text(f"{views.error(exc)}\n\n{again}",
                                          reply_markup=self.markup(views.complexity_keyboard(docker)))
            return exc.code
        st["pending_task"] = None
        self.state.save()
        await query.edit_message_text(f"submitted {got.get('task_id')} [{got.get('status')}]\n{pending['task']}")
        return "submitted"

    async def decide(self, chat: int, pid: str | None, gate_event_id: str, decision: str, note: str | None,
                     *, query: Any = None) -> str:
        if not pid:
            await self.say(chat, NO_PROJECT)
            return "no project"
        try:
            await self.plane(self.link.decide, pid, gate_event_id, decision, note)
        except LoomError as exc:
            if isinstance(exc, GateAlreadyAnswered) or exc.code in STALE:
                if query is None:
                    await self.say(chat, "This gate was already answered; your note was not sent.")
                return "already answered"
            await self.say(chat, views.error(exc))
            return exc.code
        done = {"accept": "✅ approved", "abandon": "🛑 abandoned", "reject": "↩️ rejected"}[decision]
        if query is not None and query.message is not None:
            from telegram.error import TelegramError

            with contextlib.suppress(TelegramError):  # the buttons go; the answer is made either way
                await query.edit_message_reply_markup(None)
        await self.say(chat, f"{done}" + (f" — the agents rework with your note:\n{note}" if note else ""))
        return done

    async def confirm_cancel(self, chat: int, pid: str | None) -> None:
        target = self.target(chat, pid)
        if not target:
            await self.say(chat, NO_PROJECT)
            return
        await self.say(chat, "Cancel the task (it is stopped and archived)?",
                       [[("Yes, cancel it", views.data("cy", target)), ("No", views.data("cnx"))]])

    async def cancel(self, chat: int, query: Any, pid: str | None) -> str:
        if not pid:
            return "no project"
        try:
            got = await self.plane(self.link.cancel, pid)
        except LoomError as exc:
            await query.edit_message_text(views.error(exc))
            return exc.code
        await query.edit_message_text(f"🛑 cancelled {got.get('task_id') or 'the task'} (archived)")
        return "cancelled"

    def target(self, chat: int, pid: str | None) -> str | None:
        return pid or (self.active(chat) or {}).get("id")

    def label(self, chat: int, pid: str) -> str:
        active = self.active(chat) or {}
        if active.get("id") == pid:
            return active.get("name") or pid
        return next((p["name"] for p in self.state.chat(chat).get("picker") or [] if p.get("id") == pid), pid)

    # ---------------------------------------------------------------- views
    async def send_status(self, chat: int, pid: str | None) -> None:
        target = self.target(chat, pid)
        if not target:
            await self.say(chat, NO_PROJECT)
            return
        try:
            model = (await self.plane(self.link.project_row, target))["status"]
            trace = await self.trace(target) if model.get("has_task") else None
        except LoomError as exc:
            await self.say(chat, views.error(exc))
            return
        buttons = [[("📄 Plan", views.data("pl", target)), ("🛑 Cancel", views.data("cn", target))]] \
            if model.get("status") == "in_progress" else None
        await self.say(chat, views.status_text(self.label(chat, target), model, trace), buttons)

    async def trace(self, pid: str) -> dict[str, Any] | None:
        try:
            return await self.plane(self.link.trace, pid)
        except LoomError:
            return None

    async def send_plan(self, chat: int, pid: str | None) -> None:
        from telegram import InputFile

        target = self.target(chat, pid)
        if not target:
            await self.say(chat, NO_PROJECT)
            return
        try:
            got = await self.plane(self.link.plan, target)
        except LoomError as exc:
            await self.say(chat, views.error(exc))
            return
        if got is None:
            await self.say(chat, f"{self.label(chat, target)} has no plan document (yet).")
            return
        path, text = got
        caption = views.plan_caption(self.label(chat, target), path)
        if len(caption) + 2 + len(text) <= views.LIMIT:
            await self.say(chat, f"{caption}\n\n{text}")
        else:
            await self.app.bot.send_document(chat, InputFile(text.encode(), filename="plan.md"), caption=caption)

    async def ship(self, chat: int, pid: str | None, verb: str) -> None:
        target = self.target(chat, pid)
        if not target:
            await self.say(chat, NO_PROJECT)
            return
        try:
            got = await self.plane(self.link.ship, target, verb)
        except LoomError as exc:
            await self.say(chat, views.error(exc))
            return
        await self.say(chat, views.ship_text(verb, got))
