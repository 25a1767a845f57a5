"""Explanations of trained kgnet runs: Grad-CAM side by side, concept contributions (or attention), faithfulness.

`python -m kgnet.explain --run DIR --samples 8` writes, under DIR/explain, one figure per image,
`faithfulness.json` (deletion/insertion AUC and ROAD of each variant's map, the concept-removal
checks) and an `index.html` gallery. `kgnet.explain.pipeline.explain_run` is the same from Python.
"""

#: Steps of the deletion/insertion curves (`kgnet.explain.faithfulness`), and what a deleted pixel
#: becomes: here, where the command line reads them without loading torch.
STEPS = 32
FILLS = ("mean", "blur")
