"""A settings field as a command-line and YAML option: one declaration per option.

A field of a settings dataclass declared with :func:`option` carries its option's help, metavar,
parser and choices; the `poptune` parser is generated from those fields (:func:`add_options`),
the keys of a ``--config`` file are checked and converted by the same specs
(:func:`read_config`), and the settings check their choices with them (:func:`check_choices`).
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from poptune.errors import UsageError

Parse = Callable[[str], Any]  # text → value; a ValueError whose message names what was expected


@dataclass(frozen=True)
class Option:
    """How one setting is written: ``--name-with-dashes VALUE`` on the command line, ``name:
    value`` (or ``name-with-dashes: value``) in a ``--config`` file."""

    name: str  # the settings field's name
    help: str
    metavar: str | None = None
    parse: Parse | None = None  # None: the text as it is
    switch: bool = False  # present means true (store_true); YAML takes true or false
    choices: tuple[str, ...] = ()  # checked by the settings object, which names the option

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")


def option(
    default: Any = dataclasses.MISSING,
    metavar: str | None = None,
    *,
    help: str,
    parse: Parse | None = None,
    choices: Sequence[str] = (),
) -> Any:
    """A dataclass field that is also an option; a ``bool`` default makes it a switch, and
    ``choices`` are its metavar unless one is given (``asha|fifo``)."""
    metavar = metavar or ("|".join(choices) if choices else None)
    spec = Option("", help, metavar, parse, isinstance(default, bool), tuple(choices))
    return dataclasses.field(default=default, metadata={"option": spec})


def options_of(settings_class: type) -> list[Option]:
    """The options of a settings dataclass, in field order (the order --help lists them)."""
    return [
        dataclasses.replace(f.metadata["option"], name=f.name)
        for f in dataclasses.fields(settings_class)
        if "option" in f.metadata
    ]


def changed_fields(settings: Any) -> set[str]:
    """The fields of a settings object whose values differ from its class's defaults."""
    default = type(settings)()
    return {
        f.name
        for f in dataclasses.fields(settings)
        if getattr(settings, f.name) != getattr(default, f.name)
    }


def check_choices(settings: Any, *names: str) -> None:
    """Refuse a field of ``settings`` whose value is not one of its option's choices."""
    specs = {o.name: o for o in options_of(type(settings))}
    for name in names:
        require_one_of(specs[name].flag, getattr(settings, name), specs[name].choices)


def require_one_of(label: str, value: Any, choices: Sequence[str]) -> None:
    """Refuse ``value`` unless it is one of ``choices``, naming ``label`` and every choice."""
    if value not in choices:
        raise UsageError(f"{label} must be one of {', '.join(choices)}, but got {value!r}")


# ----------------------------------------------------------------------------- parsers


def integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"expected an integer, but got {text!r}") from None


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"expected a number, but got {text!r}") from None


def argparse_type(parse: Parse) -> Callable[[str], Any]:
    """``parse`` for argparse, which shows an ArgumentTypeError's message as it is (a plain
    ValueError would become "invalid <function name> value")."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


# ----------------------------------------------------------------------------- command line


def add_options(parser: argparse.ArgumentParser | Any, options: Iterable[Option]) -> None:
    """One argument per option on ``parser`` (or an argument group of one)."""
    for o in options:
        if o.switch:
            parser.add_argument(o.flag, action="store_true", help=o.help)
        else:
            kind = argparse_type(o.parse) if o.parse else None
            parser.add_argument(o.flag, type=kind, metavar=o.metavar, help=o.help)


def read_config(path: Path, options: Sequence[Option]) -> dict[str, Any]:
    """The values of the YAML file ``path``, by field name, each checked and converted like the
    command line would; a UsageError naming the file, the key and the fix otherwise."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise UsageError(f"--config {path}: cannot read it ({exc.strerror})") from exc
    except yaml.YAMLError as exc:
        raise UsageError(f"--config {path}: not valid YAML ({_yaml_problem(exc)})") from exc
    if not isinstance(loaded, dict):
        raise UsageError(f"--config {path}: expected a mapping of option: value, got a list/scalar")
    by_name = {o.name: o for o in options}
    values = {}
    for key, value in loaded.items():
        name = str(key).lstrip("-").replace("-", "_")
        if name not in by_name:
            known = ", ".join(sorted(o.flag[2:] for o in options))
            raise UsageError(f"--config {path}: unknown key {key!r}; known keys: {known}")
        values[name] = _converted(path, key, value, by_name[name])
    return values


def _converted(path: Path, key: Any, value: Any, o: Option) -> Any:
    if o.switch:
        if not isinstance(value, bool):
            raise UsageError(f"--config {path}: {key} must be true or false, but got {value!r}")
        return value
    if value is None or o.parse is None:
        return value if value is None else str(value)
    try:
        return o.parse(str(value))
    except ValueError as exc:
        raise UsageError(f"--config {path}: {key}: {exc}") from None


def _yaml_problem(exc: Exception) -> str:
    """Where and what, on one line: "line 3, column 7: expected ',' or ']', but got ..."."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    if mark is None or problem is None:
        return str(exc).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
