"""Options declared once: a command's options are the fields of one dataclass, each field carrying
its flag, help, choices, check and what ``--resume`` does with it.

``option(...)`` declares a field; ``argument(...)`` a positional one. The command line builds its
click options from these fields (``lmtool.cli``), a library caller fills the same dataclass from
Python, and both are checked by ``check_fields`` with the same one-line messages, naming the flag.
Checks that involve several fields live in the dataclass's own ``check`` method.
"""

import math
from dataclasses import MISSING, dataclass, field, fields

from .errors import LmtoolError

KEPT = "kept"
"""``resume``: a resumed run goes on with its checkpoint's value; given again, it must be the same."""
ANEW = "anew"
"""``resume``: given again with ``--resume``, the new value replaces the checkpoint's (budgets)."""


@dataclass(frozen=True)
class Option:
    """What the command line needs to know of a field (see ``option``)."""

    flags: tuple = ()
    help: str = ""
    choices: object = None
    metavar: str = None
    default_text: str = None
    check: object = None
    resume: str = None
    required: bool = False
    is_flag: bool = False
    argument: bool = False
    convert: object = None
    nargs: int = -1
    numbers: bool = False

    def flag(self, name):
        """The long flag (``--hidden``) that names field ``name`` in messages."""
        longs = [f for f in self.flags if f.startswith("--")]
        return longs[0] if longs else "--" + name.replace("_", "-")


def option(default=None, *, flags=(), help="", choices=None, metavar=None, default_text=None, check=None,
           resume=None, required=False, convert=None, numbers=False):
    """A dataclass field that is a command-line option.

    flags: the option's flags (default ``--field-name``); choices: names the value must be one of (a
    registry); default_text: what ``--help`` shows as the default when it is computed (e.g. ``--hidden``);
    check: ``check(flag, value)`` raising ``LmtoolError``, run by ``check_fields`` (None values are
    left alone unless the check says otherwise); resume: ``KEPT``, ``ANEW`` or None (not part of a
    checkpoint); convert: turns the command line's text into the field's value (e.g. a duration);
    numbers: the option takes every number written after it (``--prune 0 1 1``, as lmplz), given to
    ``convert`` joined by spaces. A bool default makes an on/off flag.
    """
    meta = Option(flags=tuple(flags), help=help, choices=choices, metavar=metavar, default_text=default_text,
                  check=check, resume=resume, required=required, is_flag=isinstance(default, bool),
                  convert=convert, numbers=numbers)
    return field(default=default, metadata={"option": meta})


def argument(metavar, help="", nargs=-1):
    """A dataclass field filled by positional arguments: one or more, as a list (``nargs=-1``), or
    exactly one (``nargs=1``), as the value itself."""
    meta = Option(argument=True, metavar=metavar, help=help, nargs=nargs)
    return field(default_factory=list, metadata={"option": meta}) if nargs == -1 else field(default=None,
                                                                                              metadata={"option": meta})


def declared(cls):
    """(field, Option) for each field of dataclass ``cls`` that is an option or an argument, in order."""
    return [(f, f.metadata["option"]) for f in fields(cls) if "option" in f.metadata]


def default(cls, name):
    """The default of field ``name`` of ``cls``: so that a library dataclass (a trainer's config, say)
    can take its defaults from the options that set it, rather than declaring them again."""
    for f in fields(cls):
        if f.name == name:
            if f.default is not MISSING:
                return f.default
            if f.default_factory is not MISSING:
                return f.default_factory()
    raise KeyError(f"{cls.__name__} has no field {name!r} with a default")


def flags_where(cls, resume):
    """{field name: flag} of the options of ``cls`` whose ``resume`` is ``resume``."""
    return {f.name: meta.flag(f.name) for f, meta in declared(cls) if meta.resume == resume}


def check_fields(options):
    """Run each option's choices and check on its value: one ``LmtoolError`` naming the flag."""
    for f, meta in declared(options):
        value = getattr(options, f.name)
        if meta.choices is not None and value is not None and value not in meta.choices:
            raise LmtoolError(f"{meta.flag(f.name)} must be one of {', '.join(meta.choices)}, got {value!r}")
        if meta.check is not None:
            meta.check(meta.flag(f.name), value)


def converted(options):
    """Apply each option's ``convert`` to a value still given as text (in place); returns ``options``."""
    for f, meta in declared(options):
        value = getattr(options, f.name)
        if meta.convert is not None and isinstance(value, str):
            object.__setattr__(options, f.name, meta.convert(value))
    return options


# Checks, for ``option(check=...)``: each takes the flag and the value, and raises ``LmtoolError``.

def positive(limit=None):
    """An integer of at least 1 (and at most ``limit``, beyond which it is a slip)."""
    def check(flag, value):
        if value is None or value < 1:
            raise LmtoolError(f"{flag} must be a positive integer, got {value}")
        if limit is not None and value > limit:
            raise LmtoolError(f"{flag} {value} is absurdly large (at most {limit})")
    return check


def optional_positive(flag, value):
    """None (not given) or a positive integer."""
    if value is not None and value < 1:
        raise LmtoolError(f"{flag} must be positive, got {value}")


def seed_value(flag, value):
    """A seed: an integer NumPy's generators take, 0 to 2**64-1."""
    if not 0 <= value < 2 ** 64:
        raise LmtoolError(f"{flag} must be an integer from 0 to 2**64-1, got {value}")


def fraction(flag, value):
    """A fraction in [0, 1)."""
    if not 0 <= value < 1:
        raise LmtoolError(f"{flag} must be a fraction in [0, 1), got {value}")


def positive_number(flag, value):
    """None (a default chosen elsewhere) or a positive finite number."""
    if value is not None and not (value > 0 and math.isfinite(value)):
        raise LmtoolError(f"{flag} must be a positive number, got {value}")


def duration(text):
    """Seconds in '15m', '90s', '1h30m', '2.5h' or a plain number of seconds (``--max-time``)."""
    import re

    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms]?)", text.strip().lower())
    if not parts or "".join(a + b for a, b in parts) != re.sub(r"\s", "", text.strip().lower()):
        raise LmtoolError(f"--max-time: expected a duration like 15m, 90s or 1h30m, got {text!r}")
    seconds = sum(float(a) * {"h": 3600, "m": 60, "s": 1, "": 1}[b] for a, b in parts)
    if seconds <= 0:
        raise LmtoolError(f"--max-time must be positive, got {text!r}")
    return seconds
