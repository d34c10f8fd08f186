"""Packaging for habitat-fih (a Habitat-Lab extension).

Pins: habitat-lab / habitat-baselines 0.3.3 are published on PyPI only as 0.3.320260507 and pin
numpy 1.26.4 and gym < 0.23.1; habitat-baselines needs torchvision, and torch 2.14.1 +
torchvision 0.29.1 is the pair known to install together with them on Python 3.11.
"""

from setuptools import find_packages, setup

setup(
    name="habitat-fih",
    version="0.1.0",
    description=(
        "Frame-indexed heatmap targets, an embedded CPU simulator (FIHSim-v0) and a "
        "VGGT/DINOv3/Qwen2.5-VL trainer for vision-language navigation on Habitat"
    ),
    python_requires=">=3.11",
    packages=find_packages(include=["habitat_fih", "habitat_fih.*"])
    + ["habitat_fih.configs", "hydra_plugins.habitat_fih_plugin"],
    # configs/habitat/ is installed as the resource package habitat_fih.configs (Hydra search
    # path pkg://habitat_fih.configs); hydra_plugins/ makes Hydra discover that search path.
    package_dir={"habitat_fih.configs": "configs/habitat"},
    include_package_data=True,
    package_data={"habitat_fih": ["py.typed"], "habitat_fih.configs": ["**/*.yaml"]},
    install_requires=[
        "habitat-lab==0.3.320260507",
        "habitat-baselines==0.3.320260507",
        "torch==2.14.1",
        "torchvision==0.29.1",
        "transformers>=5.17",
        "peft>=0.17",
        "safetensors>=0.4",
        "hydra-core>=1.3.2",
        "gym>=0.22,<0.23.1",
        "numpy==1.26.4",
        "numpy-quaternion>=2023.0",
        "opencv-python-headless>=4.8",
        "tensorboard>=2.14",
        "tqdm>=4.66",
        "scipy>=1.11",
        "pillow>=10",
        # embedded simulator: mesh loading, Embree ray casting, fast-marching geodesics
        "trimesh>=4.4",
        "embreex>=2.17",
        "scikit-fmm>=2024.0",
        # navigability heightfield (habitat_fih.sim.navigation): Recast-style rasterisation of
        # the triangles in compiled loops, with results independent of the CPU's SIMD width
        "numba>=0.60",
    ],
    # the user's video inference program (habitat_fih.infer)
    entry_points={"console_scripts": ["fih-infer = habitat_fih.infer.cli:main"]},
    extras_require={
        "test": ["pytest>=8", "ruff>=0.6"],
        # optional Weights & Biases logging (habitat_baselines.writer_type=wb)
        "wandb": ["wandb>=0.17"],
    },
)
