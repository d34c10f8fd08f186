"""Packaging for habitat-fih (a Habitat-Lab extension).

Pins: habitat-lab / habitat-baselines 0.3.3 are published on PyPI only as 0.3.320260507 and pin
numpy 1.26.4 and gym < 0.23.1; habitat-baselines needs torchvision, and torch 2.14.1 +
torchvision 0.29.1 is the pair known to install together with them on Python 3.11.

Start-up hook (``_habitat_fih_autocompat``, see its docstring): the command ``build_pth`` writes
``habitat_fih_autocompat.pth`` into the root of the installed package tree, i.e. site-packages.
setuptools' PEP 660 editable wheel (``pip install -e .``, as the Makefile does) builds the
packages only as import hooks into the source and leaves out what ``build_lib`` holds, so in
editable mode (``editable_mode`` set by setuptools) the command writes the file into the editable
wheel's own root instead: ``install.install_lib``, which editable_wheel points at that root (it
writes data and scripts there the same way; checked with the lenient, strict and compat editable
modes). ``tests/compat/test_habitat_baselines_run.py`` checks that the wheel and the editable
wheel carry the file and that the venv has it.
"""

import os

from setuptools import Command, find_packages, setup
from setuptools.command.build import build

#: Installed into site-packages; sorts after setuptools' ``__editable__.*.pth`` (site.py reads
#: .pth files in name order), whose import hook an editable install needs to find the module.
PTH_NAME = "habitat_fih_autocompat.pth"
PTH_LINE = "import _habitat_fih_autocompat; _habitat_fih_autocompat.install()\n"


class build_pth(Command):
    """Write :data:`PTH_NAME` (the start-up hook) where the build puts top-level modules."""

    description = "write the habitat_fih_autocompat.pth start-up hook"
    user_options: list[tuple[str, str | None, str]] = []
    editable_mode = False

    def initialize_options(self) -> None:
        self.build_lib: str | None = None

    def finalize_options(self) -> None:
        self.set_undefined_options("build_py", ("build_lib", "build_lib"))

    def _target_dir(self) -> str:
        if self.editable_mode:  # the editable wheel's root (see the module docstring)
            return self.get_finalized_command("install").install_lib
        return self.build_lib

    def run(self) -> None:
        target = os.path.join(self._target_dir(), PTH_NAME)
        self.mkpath(os.path.dirname(target))
        with open(target, "w", encoding="utf-8") as handle:
            handle.write(PTH_LINE)

    def get_outputs(self) -> list[str]:
        # editable mode: the file is in the wheel already, not in build_lib
        return [] if self.editable_mode else [os.path.join(self.build_lib, PTH_NAME)]

    def get_source_files(self) -> list[str]:
        return []


class build_with_pth(build):
    sub_commands = [*build.sub_commands, ("build_pth", None)]


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
    # the start-up hook's module (imported by habitat_fih_autocompat.pth, see build_pth)
    py_modules=["_habitat_fih_autocompat"],
    cmdclass={"build": build_with_pth, "build_pth": build_pth},
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
