"""The Telegram bot (spec §7): python-telegram-bot over long polling, a client of the plane (never a store).

Updates are handled one at a time (the library's default), so two quick taps on one button are two answers in
a row and the plane refuses the second (``GateAlreadyAnswered`` → "already answered"). Plane calls run on
worker threads (``asyncio.to_thread``); the watch loop (:mod:`.watch`) announces gates and ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from loom_core.surfaces.bot import views
from loom_core.surfaces.bot.handlers import Handlers
from loom_core.surfaces.bot.plane import PlaneLink
from loom_core.surfaces.bot.state import BotState

log = logging.getLogger("loom.bot")

ALLOWED_UPDATES = ["message", "callback_query"]


class TelegramBot(Handlers):
    """One bot: its token, who may use it, the Bot API root, the plane and the state file."""

    def __init__(self, *, token: str, allowed: frozenset[int], link: PlaneLink, state: BotState,
                 api_url: str = "https://api.telegram.org", watch_period_s: float = 4.0,
                 poll_timeout_s: float = 25.0) -> None:
        self.token, self.allowed, self.link, self.state = token, allowed, link, state
        self.api_url = api_url.rstrip("/")
        self.watch_period_s, self.poll_timeout_s = watch_period_s, poll_timeout_s
        self.app: Any = None
        self.polling = asyncio.Event()  # set once getUpdates runs (tests and --detach wait for it)
        self.watch_delays: list[float] = []  # back-off pauses of the watch loop (1 s → 30 s)

    # ---------------------------------------------------------------- plumbing
    async def plane(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def say(self, chat_id: int, text: str, buttons: views.Buttons | None = None) -> Any:
        """Send ``text`` (split at newlines); the keyboard goes with the last piece. Returns that message."""
        pieces = views.split(text)
        sent = None
        for i, piece in enumerate(pieces):
            last = i == len(pieces) - 1
            sent = await self.app.bot.send_message(chat_id, piece, reply_markup=self.markup(buttons)
                                                   if last else None)
        return sent

    async def ask_reason(self, chat_id: int) -> int | None:
        """The force-reply prompt for a rejection note; its message id. Sent as a raw call: the message that
        comes back is not parsed (a Bot API server that echoes the ForceReply in it would not parse)."""
        import warnings

        from telegram import ForceReply
        from telegram.warnings import PTBUserWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PTBUserWarning)  # "use Bot.sendMessage": on purpose, see above
            got = await self.app.bot.do_api_request("sendMessage", api_kwargs={
                "chat_id": chat_id, "text": "↩️ Why reject? Reply with a note: the agents rework with it.",
                "reply_markup": ForceReply(input_field_placeholder="the note for the agents").to_json()})
        return got.get("message_id") if isinstance(got, dict) else None

    @staticmethod
    def markup(buttons: views.Buttons | None) -> Any:
        from telegram import InlineKeyboardButton, InlineKeyboardMarkup

        if not buttons:
            return None
        return InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=d) for label, d in row]
                                     for row in buttons])

    def active(self, chat_id: int) -> dict[str, Any] | None:
        return self.state.chat(chat_id).get("active_project")

    # ---------------------------------------------------------------- the allowlist (default deny)
    async def guard(self, update: Any, context: Any) -> None:
        from telegram.ext import ApplicationHandlerStop

        user = update.effective_user
        if user is not None and user.id in self.allowed:
            return
        uid = user.id if user is not None else "unknown"
        if update.callback_query is not None:
            await update.callback_query.answer(f"Not authorized (your id is {uid}).")
        elif update.effective_chat is not None:
            await self.app.bot.send_message(
                update.effective_chat.id, f"⛔ You are not authorized to use this bot. Your Telegram user id is "
                                          f"{uid}: ask its operator to add it to telegram.allowed_users.")
        log.info("refused an update from user %s", uid)
        raise ApplicationHandlerStop

    # ---------------------------------------------------------------- the application
    def build(self) -> Any:
        from telegram import Update
        from telegram.ext import (
            Application,
            CallbackQueryHandler,
            CommandHandler,
            MessageHandler,
            TypeHandler,
            filters,
        )

        app = (Application.builder().token(self.token).base_url(f"{self.api_url}/bot")
               .base_file_url(f"{self.api_url}/file/bot").get_updates_read_timeout(self.poll_timeout_s + 10)
               .build())
        app.add_handler(TypeHandler(Update, self.guard), group=-1)
        for name in ("start", "help", "projects", "status", "plan", "cancel"):
            app.add_handler(CommandHandler(name, getattr(self, f"cmd_{name}")))
        app.add_handler(MessageHandler(filters.COMMAND, self.cmd_help))  # unknown command → help
        app.add_handler(MessageHandler(filters.TEXT & ~filters.COMMAND, self.on_text))
        app.add_handler(CallbackQueryHandler(self.on_tap))
        app.add_error_handler(self.on_error)
        self.app = app
        return app

    async def on_error(self, update: Any, context: Any) -> None:
        log.warning("handling an update failed: %s", context.error)

    async def serve(self, stop: asyncio.Event) -> None:
        """Check the plane, connect to Telegram (backing off 1 s → 30 s), poll and watch until ``stop``."""
        from loom_core.surfaces.bot.watch import connect, watch

        await connect(self, stop)
        if stop.is_set():
            return
        app = self.app
        watcher = None
        try:
            await app.start()
            await app.updater.start_polling(poll_interval=0.0, timeout=int(self.poll_timeout_s),
                                            allowed_updates=ALLOWED_UPDATES, bootstrap_retries=-1,
                                            error_callback=lambda exc: log.warning("Telegram: %s", exc))
            self.polling.set()
            watcher = asyncio.create_task(watch(self, stop))
            await stop.wait()
        finally:
            if watcher is not None:
                watcher.cancel()
                await asyncio.gather(watcher, return_exceptions=True)
            if app.updater.running:
                await app.updater.stop()
            if app.running:
                await app.stop()
            await app.shutdown()
            await asyncio.to_thread(self.link.close)
