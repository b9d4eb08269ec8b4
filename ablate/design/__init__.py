"""The design layer: the spec (loaded and checked against the trick, model and data registries),
factorial designs, arms, the plan of trials and each trial's identity; the `search:` section
checked against the rest of the spec and the seeds of a search's stages."""
