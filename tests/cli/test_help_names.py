"""The --policy and --complexity help is written out (computing it would import the kernel and the code
bundle on every `loom` start); these tests tie it to the registries, so a new policy or size is named."""

from __future__ import annotations

import re
import typing

from loom_core.control import backend_help, complexity_names, policy_names
from loom_core.surfaces.cli import common


def _help(opt) -> str:
    return typing.get_args(opt)[1].help


def _names(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+(?:-[a-z]+)*", text))


def test_policy_help_names_every_policy_and_preset():
    assert set(policy_names()) <= _names(_help(common.PolicyOpt))


def test_complexity_help_names_every_size_of_the_code_bundle():
    assert set(complexity_names("code")) <= _names(_help(common.ComplexityOpt))


def test_backend_help_is_the_registrys():
    assert common.BACKEND_HELP == backend_help()
