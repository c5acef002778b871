"""How two JSON answers are compared by the conformance replay: their shape, not their values.

The shape of an answer is the set of its key paths (``virtualMachineConfiguration.imageReference.sku``; a list's
items share one path, ``value[].state``, the union of their keys), so ids, times, ETags and URLs may differ freely
in value while the keys must match. On top of that, enum spellings: the string values of a key that look like enum
members (identifier-like: no spaces, dots or dashes, and not under a key that names an id, a name, a URL or a time)
must share a case style (``Spread`` vs ``spread`` differs, ``idle`` vs ``running`` does not). An error answer's
``code`` must be the same code.
"""

import re
from dataclasses import dataclass
from typing import Any

IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Keys whose values are identities, free text or user data, never enum members.
FREE_KEY = re.compile(r"(id|Id|ID|name|Name|url|Url|URL|Time|time|eTag|lastModified|Line|line|value|key|version|"
                      r"results|thumbprint|Address|FQDN|Path|path|Prefix|prefix|message|Message|password|"
                      r"formula|Formula|sku|offer|publisher)$")


@dataclass(frozen=True)
class ShapeDiff:
    """What differs between a recorded and an emulator answer (empty tuples: the same shape)."""
    missing: tuple[str, ...] = ()      # key paths the service answered and the emulator did not
    extra: tuple[str, ...] = ()        # key paths only the emulator answered
    enums: tuple[str, ...] = ()        # "path: recorded style vs emulator style"
    code: str = ""                     # "RecordedCode vs EmulatorCode" for error answers

    def __bool__(self) -> bool:
        return bool(self.missing or self.extra or self.enums or self.code)

    def summary(self, limit: int = 6) -> str:
        parts = []
        if self.code:
            parts.append(f"code {self.code}")
        for label, items in (("missing", self.missing), ("extra", self.extra), ("enum", self.enums)):
            if items:
                shown = ", ".join(items[:limit]) + (", ..." if len(items) > limit else "")
                parts.append(f"{label} {len(items)}: {shown}")
        return "; ".join(parts)


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path in ``value``; list items contribute under ``prefix[]``."""
    paths: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            paths |= key_paths(item, path)
    elif isinstance(value, list):
        for item in value:
            paths |= key_paths(item, f"{prefix}[]")
    return paths


def enum_styles(value: Any, prefix: str = "", key: str = "") -> dict[str, set[str]]:
    """Per key path, the case styles of its enum-like string values."""
    styles: dict[str, set[str]] = {}
    if isinstance(value, dict):
        for child, item in value.items():
            path = f"{prefix}.{child}" if prefix else child
            for sub, found in enum_styles(item, path, child).items():
                styles.setdefault(sub, set()).update(found)
    elif isinstance(value, list):
        for item in value:
            for sub, found in enum_styles(item, f"{prefix}[]", key).items():
                styles.setdefault(sub, set()).update(found)
    elif isinstance(value, str) and key and not FREE_KEY.search(key) and IDENTIFIER.match(value):
        styles[prefix] = {case_style(value)}
    return styles


def case_style(word: str) -> str:
    if word.islower() or not any(c.isalpha() for c in word):
        return "lower"
    if word.isupper():
        return "UPPER"
    return "Pascal" if word[0].isupper() else "camel"


def compare(recorded: Any, emulated: Any, error: bool = False) -> ShapeDiff:
    """The shape difference between the recorded and the emulator's JSON answer."""
    if not isinstance(recorded, (dict, list)) or not isinstance(emulated, (dict, list)):
        same_kind = type(recorded) is type(emulated) or (recorded is None) == (emulated is None)
        return ShapeDiff() if same_kind else ShapeDiff(missing=("<body>",) if recorded is not None else (),
                                                       extra=("<body>",) if emulated is not None else ())
    mine, theirs = key_paths(recorded), key_paths(emulated)
    enums = []
    rec_styles, emu_styles = enum_styles(recorded), enum_styles(emulated)
    for path in sorted(rec_styles.keys() & emu_styles.keys()):
        if not rec_styles[path] & emu_styles[path]:
            enums.append(f"{path}: {'/'.join(sorted(rec_styles[path]))} vs {'/'.join(sorted(emu_styles[path]))}")
    code = ""
    if error and isinstance(recorded, dict) and isinstance(emulated, dict):
        if recorded.get("code") != emulated.get("code"):
            code = f"{recorded.get('code')} vs {emulated.get('code')}"
    return ShapeDiff(missing=tuple(sorted(mine - theirs)), extra=tuple(sorted(theirs - mine)),
                     enums=tuple(enums), code=code)
