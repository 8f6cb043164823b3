"""Reading JobScript attributes and resources from INI files.

The format is :mod:`configparser`'s default (no interpolation, so ``%`` and
``$`` pass through), with case-sensitive keys, and the sections
``[Attributes]`` and/or ``[Resources]`` only. Every error names the file,
the section and the key at fault.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass, field
from typing import Any

from clusterjob.errors import ConfigError

__all__ = ["RESERVED_KEYS", "Settings", "convert_resource_value", "read_ini"]

SECTIONS = ("Attributes", "Resources")
RESERVED_KEYS = ("resources", "backends")
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
#: Common resources whose values are integers.
INTEGER_RESOURCES = ("nodes", "ppn", "threads", "mem")


@dataclass
class Settings:
    """The validated contents of one INI file."""

    filename: str
    attributes: dict[str, str] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)


def convert_resource_value(key: str, value: str, where: str) -> Any:
    """INI strings to the types resources use: integers for the common counts, True/False flags."""
    if key in INTEGER_RESOURCES:
        try:
            return int(value)
        except ValueError:
            raise ConfigError(f"{where}: {key} = {value!r} is not an integer") from None
    if value.lower() == "true":
        return True
    if value.lower() == "false":
        return False
    return value


def read_ini(filename: str) -> Settings:
    """Parse and validate ``filename``; raise ConfigError naming what is wrong."""
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00no-default\x00")
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case sensitive
    try:
        # utf-8-sig: a byte order mark (some Windows editors write one) is not part of line 1.
        with open(filename, encoding="utf-8-sig") as in_fh:
            parser.read_file(in_fh, source=filename)
    except OSError as exc:
        raise ConfigError(f"cannot read config file {filename!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {filename!r} is not UTF-8 text (byte {exc.object[exc.start]:#04x} "
            f"at offset {exc.start}); save it as UTF-8"
        ) from None
    except configparser.Error as exc:
        raise ConfigError(f"config file {filename!r} is not a valid INI file: {exc}") from None
    sections = parser.sections()
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown:
        raise ConfigError(
            f"config file {filename!r}: unknown section [{unknown[0]}]; "
            "only [Attributes] and [Resources] are allowed (section names are case sensitive)"
        )
    if not sections:
        raise ConfigError(
            f"config file {filename!r} has neither an [Attributes] nor a [Resources] section"
        )
    settings = Settings(filename)
    for section in sections:
        for key, value in parser.items(section):
            where = f"config file {filename!r}, section [{section}], key {key!r}"
            if key in RESERVED_KEYS:
                raise ConfigError(
                    f"{where}: {key!r} is reserved and may not be set from a config file"
                )
            if section == "Attributes":
                if not _ATTRIBUTE_KEY.match(key):
                    raise ConfigError(
                        f"{where}: attribute names must start with a letter and contain only "
                        "letters, digits and underscores"
                    )
                settings.attributes[key] = value
            else:
                settings.resources[key] = convert_resource_value(key, value, where)
    return settings
