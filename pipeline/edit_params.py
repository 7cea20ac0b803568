"""``al set KEY=VALUE``: change ``params.yaml`` keys and keep the file's comments and layout."""

from __future__ import annotations

import os
from pathlib import Path

from al_core.artifacts import atomic_path
from al_core.errors import InputError


def set_params(path: Path, assignments: list[str]) -> None:
    """Set ``KEY=VALUE`` pairs (dotted keys, values read as YAML: ``budget=200``,
    ``labels.source=annotations``, ``data.classes=[cat, dog]``) in ``path``, keeping its comments
    and layout. The result is checked against the params schema first: a misspelled key or a bad
    value changes nothing."""
    import io

    import yaml
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError as RuamelError

    if not path.is_file():
        raise InputError(f"{path} not found; run from the project root (where params.yaml is) or name it with --params")
    target = path.resolve()  # a symlinked params.yaml stays a link: its target is what changes
    if not target.stat().st_mode & 0o222:
        raise InputError(f"{path} is read-only; make it writable (chmod u+w {path}) to change it")
    raw = target.read_bytes()
    editor = YAML()
    editor.preserve_quotes = True
    try:
        document = editor.load(raw.decode("utf-8"))
    except (UnicodeDecodeError, RuamelError) as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise InputError(f"{path} is not valid YAML{where} ({getattr(error, 'problem', None) or error}); fix it by hand, "
                         "then run al set again") from None
    if not isinstance(document, dict):
        raise InputError(f"{path} must be a mapping of settings (key: value); fix it by hand, then run al set again")
    for assignment in assignments:
        key, equals, text = assignment.partition("=")
        if not equals or not key:
            raise InputError(f"{assignment!r} is not KEY=VALUE (e.g. labels.source=annotations)")
        try:
            value = yaml.safe_load(text) if text else ""
        except yaml.YAMLError as error:
            raise InputError(f"{assignment!r}: the value is not valid YAML ({error})") from None
        node = document
        *parents, last = key.split(".")
        for part in parents:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[last] = value
    buffer = io.StringIO()
    editor.dump(document, buffer)
    check_settings(yaml.safe_load(buffer.getvalue()) or {}, path)
    text = buffer.getvalue()
    if b"\r\n" in raw:  # keep the file's line endings
        text = text.replace("\r\n", "\n").replace("\n", "\r\n")
    with atomic_path(target, suffix=".yaml") as tmp:
        tmp.write_bytes(text.encode("utf-8"))
        os.chmod(tmp, target.stat().st_mode & 0o7777)
    print(f"{path}: " + ", ".join(assignments))


def check_settings(data: dict, path: Path) -> None:
    """What every stage would check when it reads the file, at once: the schema, the schedule, the
    sampler's name and every ``select.<sampler>`` option (against the registry)."""
    from pipeline.params import check_schedule, validate_params
    from pipeline.sampler_options import check_sampler_settings

    validate_params(data, str(path))
    if isinstance(data.get("schedule"), dict):
        check_schedule(data["schedule"], str(path))
    check_sampler_settings(data, str(path), data.get("sampler", "base"))
