"""SMCL method pieces: saliency maps, masks, losses and the minor-class sampler."""
