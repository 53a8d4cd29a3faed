"""PolyRefuse: English harmful/harmless prompts and their translations into 13 languages.

``sources`` reads the English splits of the refusal-direction literature (Arditi et al. 2024,
reused unchanged by PolyRefuse), traces every prompt to its benchmark, and can rebuild the
splits from the raw benchmark files. ``published`` imports PolyRefuse's published translations,
``checks`` flags doubtful translations, ``pipeline`` declares the build (import -> check ->
assemble), ``settings`` its settings, ``card`` the release card and ``export`` the published file
layout. See ``docs/polyrefuse.md``.
"""
