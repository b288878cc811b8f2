from setuptools import find_packages, setup

# One import root: the folders at the top of the repository install as sub-packages of `mimtrack`
# (`tracker/` -> `mimtrack.tracker`, ...), so nothing else lands in site-packages and a user's own `tracker/`
# folder cannot shadow ours.
SUBPACKAGES = ("tracker", "pretrain", "evaluation", "experiments")
PACKAGES = ["mimtrack"] + [f"mimtrack.{name}" for name in
                           find_packages(include=[p for sub in SUBPACKAGES for p in (sub, f"{sub}.*")])]

setup(
    name="mimtrack",
    version="0.1.0",
    description="Lightweight one-stream ViT tracking with MIM-distilled backbones: "
    "pre-training, tracking, and official-toolkit-exact evaluation",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=PACKAGES,
    package_dir={"mimtrack": "mimtrack", **{f"mimtrack.{sub}": sub for sub in SUBPACKAGES}},
    package_data={
        "mimtrack.experiments": ["*/*.yaml"],
        "mimtrack.evaluation": ["datasets/splits/*"],
        "mimtrack.tracker": ["weights/*.pth"],
    },
    install_requires=[
        "numpy>=1.23",
        "pyyaml>=6",
        "tqdm>=4.60",
        "matplotlib>=3.6",
        "opencv-python-headless>=4.7",
        "torch>=2.1",
        "torchvision",
        "timm>=0.9",
        "einops>=0.6",
        "lmdb>=1.4",
    ],
    extras_require={
        "export": ["onnx>=1.15", "onnxruntime>=1.17", "onnxscript"],
        # --backend openvino / openvino-int8 (NNCF's static int8); the graph is exported with the "export" extra's onnx.
        "openvino": ["openvino>=2024.6", "nncf>=2.14", "onnx>=1.15", "onnxscript"],
        "tensorboard": ["tensorboard"],
        # Real photographs that ship inside packages (`mimtrack collect-photos`): training data without a download.
        "photos": ["scikit-image", "scikit-learn"],
        "vot": ["vot-trax"],
        # The official VOT analysis for the parity tests, in its own environment (it pulls opencv-python, which
        # clashes with opencv-python-headless, and numba): tests/evaluation/test_parity_vot.py.
        "vot-toolkit": ["vot-toolkit==0.9.0", "attributee==0.1.9"],
        "dev": ["pytest>=7", "got10k==0.1.3", "six", "onnx>=1.15", "onnxruntime>=1.17", "onnxscript", "vot-trax",
                "scikit-image", "openvino>=2024.6", "nncf>=2.14"],
    },
    entry_points={"console_scripts": ["mimtrack=mimtrack.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Recognition",
    ],
)
