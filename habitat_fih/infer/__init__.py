"""The user's video inference program, ``fih-infer`` (``python -m habitat_fih.infer``).

- `habitat_fih.infer.cli`: the command line, ``--batch`` and ``--benchmark``;
- `habitat_fih.infer.settings`: the ``--config`` yaml file and the flags over it;
- `habitat_fih.infer.video`: reading a video file / image folder / glob into chosen frames;
- `habitat_fih.infer.engine`: the model's source (checkpoint, local dirs, random tiny) and the
  maps of one video (``--heatmaps model`` or ``geometry``);
- `habitat_fih.infer.geometry_maps`: the non-learned maps from VGGT's or a sidecar's geometry;
- `habitat_fih.infer.outputs`: keyframes.png, heatmaps.png / .mp4 / .npz, metrics.json;
- `habitat_fih.infer.benchmark`: the three samplers side by side.
"""
