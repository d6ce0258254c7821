"""The bot's watch loop (spec §7): every 4 s, each chat's active project is read from the plane; a newly parked
gate (dedup by ``gate_event_id``) and a newly ended task (dedup by ``<status>:<task_id>``) are announced once.
A plane that does not answer is retried after 1 s, 2 s, 4 s … up to 30 s; the first good read resumes the beat.
:func:`connect` is the start: the plane's token checked, Telegram reached with the same back-off."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from loom_core.errors import LoomError
from loom_core.surfaces.bot import views

log = logging.getLogger("loom.bot")

BACKOFF_FIRST_S, BACKOFF_MAX_S = 1.0, 30.0


def next_delay(prev: float | None) -> float:
    return BACKOFF_FIRST_S if not prev else min(BACKOFF_MAX_S, prev * 2)


async def pause(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def connect(bot: Any, stop: asyncio.Event) -> None:
    """A plane that refuses the bot's token stops the start (one clear error); one that is down is only noted
    (the watch loop waits for it). Telegram is retried until it answers; a token it refuses stops the start."""
    from telegram.error import InvalidToken, NetworkError

    try:
        await asyncio.to_thread(bot.link.check)
    except LoomError as exc:
        if exc.code == "PLANE_UNAUTHORIZED":
            raise
        log.warning("the plane is not answering yet (%s); the bot starts and keeps trying", exc)
    app = bot.build()
    delay: float | None = None
    while not stop.is_set():
        try:
            await app.initialize()  # getMe
            return
        except InvalidToken:
            raise LoomError("Telegram refused the bot token", code="TELEGRAM_TOKEN_REFUSED",
                            hint="check telegram.token / LOOM_TG_BOT_TOKEN (BotFather's /token shows it)") from None
        except NetworkError as exc:
            delay = next_delay(delay)
            log.warning("Telegram is not reachable (%s); retrying in %.0f s", exc, delay)
            await pause(stop, delay)


async def watch(bot: Any, stop: asyncio.Event) -> None:
    delay: float | None = None
    while not stop.is_set():
        try:
            await tick(bot)
        except LoomError as exc:
            delay = next_delay(delay)
            bot.watch_delays.append(delay)
            log.warning("the plane did not answer (%s); next try in %.0f s", exc, delay)
            await pause(stop, delay)
            continue
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - Telegram down for a send: the next beat retries
            log.warning("the watch loop could not announce: %s", exc)
        if delay:
            log.info("the plane answers again")
            delay = None
        await pause(stop, bot.watch_period_s)


async def tick(bot: Any) -> None:
    """One beat: read each watched project once, announce what is new in each chat that watches it."""
    watchers: dict[str, list[int]] = {}
    for chat_id, st in list(bot.state.chats.items()):
        active = st.get("active_project")
        if active and active.get("id"):
            watchers.setdefault(active["id"], []).append(int(chat_id))
    for pid, chats in watchers.items():
        try:
            model = (await bot.plane(bot.link.project_row, pid))["status"]
        except LoomError as exc:
            if exc.code == "PROJECT_NOT_FOUND":
                continue  # left the catalog: nothing to watch there
            raise
        for chat in chats:
            await announce(bot, chat, pid, model)


async def announce(bot: Any, chat: int, pid: str, model: dict[str, Any]) -> None:
    name = bot.label(chat, pid)
    gate = model.get("parked_gate")
    if gate and gate.get("gate_event_id") and bot.state.gate_project(chat, gate["gate_event_id"]) is None:
        await deliver(bot, chat, views.gate_text(name, gate), views.gate_keyboard(pid, gate["gate_event_id"]))
        bot.state.mark_gate(chat, gate["gate_event_id"], pid)
        bot.state.save()
    key = views.terminal_key(model)
    if key and bot.state.chat(chat)["announced_terminal"].get(pid) != key:
        trace = await bot.trace(pid)
        await deliver(bot, chat, views.terminal_text(name, model, trace), views.terminal_keyboard(pid))
        bot.state.mark_terminal(chat, pid, key)
        bot.state.save()


async def deliver(bot: Any, chat: int, text: str, buttons: views.Buttons) -> None:
    """Send an announcement. A chat that refuses it (the user blocked the bot, the chat is gone) counts as told,
    so it is not retried every beat; a network failure raises, and the next beat tries again."""
    from telegram.error import BadRequest, Forbidden

    try:
        await bot.say(chat, text, buttons)
    except (Forbidden, BadRequest) as exc:
        log.warning("chat %s refused an announcement: %s", chat, exc)
