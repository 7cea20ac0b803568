"""``al set KEY=VALUE``: change ``params.yaml`` keys and keep the file's comments and layout."""

from __future__ import annotations

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

    from pipeline.params import validate_params

    if not path.is_file():
        raise InputError(f"{path} not found; run from the project root (where params.yaml is) or name it with --params")
    editor = YAML()
    editor.preserve_quotes = True
    document = editor.load(path.read_text())
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
    validate_params(yaml.safe_load(buffer.getvalue()) or {}, str(path))
    with atomic_path(path, suffix=".yaml") as tmp:
        tmp.write_text(buffer.getvalue())
    print(f"{path}: " + ", ".join(assignments))
