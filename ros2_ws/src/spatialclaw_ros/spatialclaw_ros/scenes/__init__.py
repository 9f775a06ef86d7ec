"""Synthetic rooms with exact ground truth, rendered into frames and rosbags, to test the pipeline end to end.

``model`` describes a scene, ``furniture`` builds object shapes, ``generator`` makes random and named scenes
(and is the CLI), ``build`` turns them into Open3D meshes, ``render`` raycasts frames, ``measure`` computes the
ground truth (``truth``) and ``bag`` writes a rosbag2.
"""
