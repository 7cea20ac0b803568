"""Sampler options from ``params.yaml``: the ``select.<sampler>`` mappings, checked against the registry.

Only the ``select`` stage imports this module, so the other stages do not depend on the samplers
(``cluster`` reads margin_clustering's clustering options through ``al_core.clustering`` alone).
An option left out of ``params.yaml`` takes the default its sampler declares (``al samplers``).
"""

from __future__ import annotations

from al_core.errors import InputError
from al_core.samplers import SAMPLERS


def check_sampler_settings(data: dict, source: str, name: str) -> dict:
    """The options ``select.<name>`` of the settings ``data`` (read from ``source``) sets for
    sampler ``name`` (the others keep their defaults).

    Checks sampler ``name`` and every ``select.<sampler>`` mapping against the registry first (a
    misspelled sampler or option anywhere is an error naming it, whichever sampler runs).
    """
    section = data.get("select") or {}
    for sampler, settings in section.items():
        if not isinstance(settings, dict):
            continue
        if sampler not in SAMPLERS:
            raise InputError(f"{source}: select.{sampler} is not a sampler (known: {', '.join(sorted(SAMPLERS))}); "
                             "sampler options go in select.<sampler>.<option>")
        spec = SAMPLERS[sampler]
        settable = [option for option, setting in spec.options.items() if setting.settable]
        for option, value in settings.items():
            if option not in settable:
                raise InputError(f"{source}: select.{sampler}.{option} is not an option of sampler {sampler!r} "
                                 f"(its options: {', '.join(settable) or 'none'}; `al samplers` lists them)")
            spec.options[option].check(f"select.{sampler}.{option}", value, source)
    if name not in SAMPLERS:
        raise InputError(f"{source}: unknown sampler {name!r}; known samplers: {', '.join(sorted(SAMPLERS))} (`al samplers`)")
    return dict(section.get(name) or {})
