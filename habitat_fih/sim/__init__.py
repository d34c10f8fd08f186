"""FIHSim-v0: the embedded CPU simulator (scene loading, Embree rendering, navigation, motion)."""
