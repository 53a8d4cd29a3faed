"""PolyRefuse: English harmful/harmless prompts and their translations into 13 languages.

``sources`` reads the English splits of the refusal-direction literature (Arditi et al. 2024,
reused unchanged by PolyRefuse), traces every prompt to its benchmark, and can rebuild the
splits from the raw benchmark files.
"""
