"""How good a bundle is: metrics of a model on a dataset split (crops and whole photos),
the rejection threshold, report files and figures, and the int8 model checked against
the float32 one (``logo-batch quantize``). Import the modules themselves: nothing is
re-exported."""
